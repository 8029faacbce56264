#!/usr/bin/python3
"""valgrind memcheck on the unit tests and on a live daemon (scripts/test valgrind; issue #6).

1. A subset of the cmocka unit tests (UNIT below: the fast ones; the slow or numeric ones run under
   ASan instead) under `valgrind --leak-check=full --errors-for-leak-kinds=definite`.
2. `visiond serve` under the same valgrind, with one worker and the models yolo-fastest-1.1 and faces:
   real detections (raw JPEG, base64 JSON, WebP, AVIF), /v1/faces with embeddings, /v1/verify, the GET routes,
   bad requests from tests/bad/ (sent and checked by tests/ref/test_http_bad.py's runner: those that
   fail before inference, as inference under valgrind takes seconds), then SIGTERM: exit status 0.

Any memcheck error (invalid read/write, use of uninitialised values, definitely lost memory) makes
valgrind exit ERROR_EXIT and fails the test; the logs are printed. Suppressions: tests/valgrind/visiond.supp
(third-party only, each with its reason).

usage: memcheck.py --visiond build-valgrind/visiond   (from the project root; unit tests are found in
       the same build's tests/). Exit 0 clean, 1 on any error, 77 (skipped) without valgrind or models.
Takes about 3-4 minutes on 2 idle cores (valgrind runs inference some 50x slower).
"""
import argparse
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "ref"))
import daemon  # noqa: E402

ROOT = daemon.ROOT
SUPP = ROOT / "tests" / "valgrind" / "visiond.supp"
ERROR_EXIT = 97
UNIT = ["test_box", "test_config", "test_proto", "test_proto_face", "test_proto_gallery", "test_gallery", "test_tfjs",
        "test_workers"]
# Bad requests refused before inference (each folder of tests/bad/).
BAD = ["truncated_jpeg", "random_bytes_as_jpeg", "text_as_png", "png_100000x100000", "jpeg_too_many_pixels",
       "json_malformed", "json_bad_base64", "json_duplicate_member", "json_unknown_member",
       "model_name_path_traversal", "unknown_model", "body_over_limit_raw", "body_over_limit_chunked",
       "chunked_truncated_jpeg", "multipart_without_boundary", "multipart_two_images",
       "multipart_zero_byte_image", "unknown_param_query", "unknown_route", "wrong_method_put_detect",
       "timeout_header_invalid", "deepstack_truncated_jpeg", "faces_truncated_jpeg",
       "faces_input_size_not_multiple_of_32", "verify_multipart_missing_image2",
       "verify_json_embedding_127_numbers", "webp_truncated", "webp_header_only", "webp_too_many_pixels",
       "heic_truncated", "heic_ispe_too_many_pixels", "avif_truncated_multipart_faces"]
SLOW = 900.0  # seconds any one request may take under valgrind on a loaded machine


def valgrind_argv(log):
    return ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", f"--error-exitcode={ERROR_EXIT}", f"--suppressions={SUPP}",
            "--num-callers=30", f"--log-file={log}"]


def show_log(path):
    text = pathlib.Path(path).read_text(errors="replace")
    print(text[-20000:])
    return text


def summary_line(text, what):
    """'definitely lost: 0 bytes in 0 blocks' etc. from a valgrind log."""
    for line in text.splitlines():
        if what in line:
            return line.split("== ", 1)[-1].strip()
    return what + ": (not in the log)"


def run_units(c, build, tmp):
    for name in UNIT:
        exe = build / "tests" / name
        if not exe.exists():
            c.check(name, False, "built", str(exe))
            continue
        log = tmp / f"{name}.log"
        t = time.monotonic()
        p = subprocess.run([*valgrind_argv(log), str(exe)], cwd=ROOT, capture_output=True, text=True,
                           env=daemon.clean_env({"VISIOND_BLAS_REEXEC": "1"}), check=False)
        text = log.read_text(errors="replace")
        ok = c.check(name, p.returncode == 0, "clean under memcheck and passing",
                     f"exit {p.returncode}\n{p.stdout[-3000:]}\n{text[-6000:]}")
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {time.monotonic() - t:.1f} s, "
              f"{summary_line(text, 'ERROR SUMMARY')}", flush=True)


class VgDaemon(daemon.Daemon):
    """daemon.Daemon whose command runs under valgrind (same flags and environment handling)."""

    def __init__(self, visiond, log, *flags, **kw):
        self.log = log
        super().__init__(visiond, *flags, **kw)

    def argv(self):
        return [*valgrind_argv(self.log), *super().argv()]


def models_dir(tmp):
    """A models folder with the small YOLO model and the face models only (links, nothing copied)."""
    d = tmp / "models"
    d.mkdir()
    for name in ("yolo-fastest-1.1", "faces"):
        (d / name).symlink_to(ROOT / "models" / name)
    return d


def good_requests(c, d):
    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    r = d.post_raw("/v1/detect", dog, "image/jpeg", timeout=SLOW)
    c.check("detect", r.status == 200 and r.json()["count"] >= 2, "raw JPEG: 200 with detections", repr(r))
    person = (daemon.SHARED / "images" / "person.jpg").read_bytes()  # base64 fits --max-body
    doc = {"image_b64": base64.b64encode(person).decode(), "conf": 0.4, "classes": ["person"]}
    r = d.post_json("/v1/detect", doc, timeout=SLOW)
    c.check("detect", r.status == 200 and r.json()["count"] > 0 and
            {x["label"] for x in r.json()["detections"]} == {"person"},
            "base64 JSON with a class filter: persons only", repr(r))
    import test_http_bad as bad  # its body sources make the WebP and AVIF (cv2, heif-enc)
    webp = bad.source("photo-webp dog.jpg", None)
    r = d.post_raw("/v1/detect", webp, "image/webp", timeout=SLOW)
    c.check("detect", r.status == 200 and r.json()["count"] >= 2, "WebP (libwebp): 200 with detections", repr(r))
    avif = bad.source("avif 96 64", None)
    r = d.post_raw("/v1/vision/detection", avif, "image/avif", timeout=SLOW)
    c.check("detect", r.status == 200 and r.json()["success"] is True, "AVIF (libheif, libaom): 200", repr(r))
    face = (ROOT / "models" / "faces" / "package" / "demo" / "sample1.jpg").read_bytes()
    r = d.post_multipart("/v1/faces", [("image", ("s.jpg", face, "image/jpeg"))],
                         query={"embedding": True, "limit": 1, "input_size": 224}, timeout=SLOW)
    ok = r.status == 200 and r.json()["count"] == 1
    c.check("faces", ok, "one face with its landmarks and embedding", repr(r))
    if ok:
        emb = r.json()["faces"][0]["embedding"]
        doc = {"embedding1": emb, "image2_b64": base64.b64encode(face).decode(), "input_size": 224}
        r = d.post_json("/v1/verify", doc, timeout=SLOW)
        c.check("verify", r.status == 200 and r.json()["verified"] is True,
                "the embedding matches its own photo", repr(r))
    for path in ("/healthz", "/readyz", "/v1/models", "/metrics", "/openapi.json"):
        r = d.get(path, timeout=SLOW)
        c.check("get", r.status == 200, f"GET {path}: 200", repr(r))


def bad_requests(c, d):
    import test_http_bad as bad  # its case runner: parses tests/bad/<case>, sends it, checks the answer
    api = daemon.OpenApi()
    for name in BAD:
        folder = bad.CASES / name
        if not folder.is_dir():
            c.check(name, False, "case exists", str(folder))
            continue
        try:
            bad.run_case(c, api, d, folder)
        except (bad.CaseError, OSError) as e:
            c.check(name, False, "case ran", repr(e))
        if not d.alive():
            c.check(name, False, "daemon still running", d.stderr()[-2000:])
            return


def run_daemon(c, visiond, tmp):
    log = tmp / "visiond.%p.log"
    import test_http_bad as bad
    t = time.monotonic()
    with VgDaemon(visiond, str(log), "--models", str(models_dir(tmp)), "--default-model", "yolo-fastest-1.1",
                  "--max-body", str(bad.MAX_BODY), "--read-timeout-ms", "20000", "--timeout-ms", "3600000",
                  workers=1, env={"VISIOND_BLAS_REEXEC": "1"}, start_timeout=SLOW) as d:
        r = d.wait_ready(SLOW)
        c.check("start", r.status == 200, "ready", repr(r))
        print(f"daemon ready under valgrind after {time.monotonic() - t:.0f} s", flush=True)
        good_requests(c, d)
        print(f"good requests done after {time.monotonic() - t:.0f} s", flush=True)
        bad_requests(c, d)
        print(f"bad requests done after {time.monotonic() - t:.0f} s", flush=True)
        code, err = d.stop(SLOW)
    logs = sorted(tmp.glob("visiond.*.log"))
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    c.check("stop", code == 0, "exits 0 on SIGTERM with no memcheck error",
            f"exit {code}{' (memcheck errors)' if code == ERROR_EXIT else ''}\n{err[-2000:]}\n{text[-15000:]}")
    c.check("stop", "stopped (0 requests unfinished)" in err, "nothing left unfinished", err[-500:])
    leaks = summary_line(text, "definitely lost") if "LEAK SUMMARY" in text else "no leak reported"
    print(f"daemon: {summary_line(text, 'ERROR SUMMARY')}; {summary_line(text, 'in use at exit')}; {leaks}; "
          f"{time.monotonic() - t:.0f} s in all")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond")
    ap.add_argument("--no-units", action="store_true", help="only the daemon")
    ap.add_argument("--targets", action="store_true", help="print the cmake targets it runs, and exit")
    args = ap.parse_args()
    if args.targets:
        print(" ".join(UNIT))
        return 0
    if not args.visiond:
        ap.error("--visiond is required")
    if not shutil.which("valgrind"):
        print("SKIP: valgrind is not installed (scripts/install-deps)")
        return 77
    if not (ROOT / "models" / "yolo-fastest-1.1").is_dir() or not (ROOT / "models" / "faces").is_dir():
        print("SKIP: needs models/yolo-fastest-1.1 and models/faces (scripts/fetch-models)")
        return 77
    visiond = pathlib.Path(args.visiond).resolve()
    c = daemon.Checks()
    with tempfile.TemporaryDirectory(prefix="visiond-memcheck-") as tmp:
        tmp = pathlib.Path(tmp)
        if not args.no_units:
            run_units(c, visiond.parent, tmp)
        run_daemon(c, visiond, tmp)
    return c.summary("memcheck")


if __name__ == "__main__":
    sys.exit(main())
