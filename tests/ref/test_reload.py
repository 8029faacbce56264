#!/usr/bin/python3
"""SIGHUP reload of `visiond serve` (issue 7): configuration, API keys and models are read again and
swapped in without dropping a request.

The daemon runs with its own config file (`serve --config FILE` and nothing else, so every setting can
change in the file) and its own models directory of symlinks into ./models:

  a. Requests in flight across reloads: 4 client threads send POST /v1/detect (and /v1/faces when the face
     models are installed) back to back while the test sends 3 SIGHUPs (2 under TSan), each after the previous reload
     finished; every answer is 200 with the same detections as before the reloads, and requests were in
     flight (sent before the SIGHUP, answered after it) at each SIGHUP.
  b. A model linked into the models directory appears in GET /v1/models after SIGHUP and answers
     model=NAME; unlinked and SIGHUP again, it is gone (404 MODEL_NOT_FOUND).
  c. Settings: default_model and keys change at run time (the default in /v1/models; 401 without a key,
     200 with it); workers, port and cors do not: "needs restart" is logged, /metrics still shows the
     old worker count and CORS still allows the old origin (from memory that outlived the first
     generation's configuration: ASan would see a use after free).
  d. A broken config (unknown key), a broken model (garbage cfg) and a missing keys file each fail the
     reload: "reload failed" is logged, and the previous models and settings keep serving.
The daemon must exit 0 on SIGTERM and leave no sanitizer report (ASan, UBSan, TSan builds). Under TSan,
which runs the models ~25x slower, only (a) runs, with 2 reloads and no face models: the threads meet
there; (b)-(d) are the same code on one thread, which the Release and ASan runs cover.

usage: test_reload.py --visiond build/visiond    (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 if the models are missing.
"""
import argparse
import concurrent.futures
import os
import pathlib
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

ROOT = daemon.ROOT
MODELS = ROOT / "models"
XL, FAST = "yolo-fastest-1.1-xl", "yolo-fastest-1.1"
DOG = daemon.SHARED / "images" / "dog.jpg"
FACE = MODELS / "faces" / "package" / "demo" / "sample1.jpg"
KEY = "reload-test-key-0123456789"
ORIGIN = "https://app.example"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def sanitizer_of(binary):
    data = pathlib.Path(binary).read_bytes()
    return "tsan" if b"__tsan_init" in data else "asan" if b"__asan_init" in data else ""


class ReloadDaemon(daemon.Daemon):
    """A daemon configured by its file alone, so that a reload sees every change."""

    def __init__(self, visiond, conf, **kw):
        self.conf = conf
        super().__init__(visiond, **kw)

    def argv(self):
        return [self.visiond, "serve", "--config", str(self.conf)]

    def reload(self, timeout, sent=None):
        """SIGHUP; waits for the daemon to log the outcome. Returns "ok", "failed" or "timeout"; appends
        the time the signal was sent to `sent`."""
        done = lambda: len(re.findall(r'"msg":"(reloaded:|reload failed)', self.stderr()))  # noqa: E731
        before = done()
        if sent is not None:
            sent.append(time.monotonic())
        self.proc.send_signal(signal.SIGHUP)
        until = time.monotonic() + timeout
        while done() == before and time.monotonic() < until:
            time.sleep(0.05)
        last = re.findall(r'"msg":"(reloaded:|reload failed)', self.stderr())
        return "timeout" if done() == before else ("ok" if last[-1] == "reloaded:" else "failed")

    def model_names(self):
        r = self.get("/v1/models", headers={"X-API-Key": KEY})
        return {m["name"]: m.get("default", False) for m in r.json()["models"]} if r.status == 200 else {}


def write_conf(path, models, **extra):
    # A long deadline: under TSan on a busy machine a request can wait half a minute, which is not what
    # this test is about (test_http_concurrency.py tests deadlines).
    settings = {"port": 0, "models": models, "workers": 2, "access_log": "no", "timeout_ms": 600000,
                "cors": ORIGIN, **extra}
    path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))


def cors_origin(d):
    """The Access-Control-Allow-Origin the daemon answers to ORIGIN (the HTTP layer's CORS list, which
    outlives the generation it came from)."""
    return d.get("/healthz", headers={"Origin": ORIGIN}).header("Access-Control-Allow-Origin")


def detect(d, model=None):
    q = {"model": model} if model else None
    return d.post_raw("/v1/detect", DOG.read_bytes(), "image/jpeg", query=q, headers={"X-API-Key": KEY},
                      timeout=120)


def boxes(r):
    return [(x["label"], round(x["confidence"], 4)) for x in r.json()["detections"]]


def test_in_flight(d, scale, with_faces, reloads):
    """(a) Clients keep sending while the daemon reloads."""
    expected = boxes(detect(d))
    stop = threading.Event()
    results, lock = [], threading.Lock()

    def client(k):
        while not stop.is_set():
            t0 = time.monotonic()
            if with_faces and k == 3:
                r = d.post_multipart("/v1/faces", [("image", ("face.jpg", FACE.read_bytes(), "image/jpeg"))],
                                     timeout=120)
                ok = r.status == 200 and r.json()["count"] >= 1
            else:
                r = detect(d)
                ok = r.status == 200 and boxes(r) == expected
            with lock:
                results.append((t0, time.monotonic(), r.status, ok))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client, k) for k in range(4)]
        time.sleep(0.5 * scale)
        signals = []
        for _ in range(reloads):
            outcome = d.reload(60 * scale, signals)
            check(outcome == "ok", f"(a) reload under load succeeds ({outcome})")
            time.sleep(0.3 * scale)
        stop.set()
        for f in futures:
            f.result()
    bad = [r for r in results if not r[3]]
    check(len(results) >= 4 * reloads and not bad,
          f"(a) {len(results)} requests across {reloads} reloads, all 200 and correct (bad: {bad[:3]})")
    spanning = [sum(1 for t0, t1, _, _ in results if t0 < s < t1) for s in signals]
    check(all(n >= 1 for n in spanning), f"(a) requests in flight at each SIGHUP: {spanning}")
    check(cors_origin(d) == ORIGIN, "(a) CORS still answered after the reloads")


def test_models_dir(d, models_dir, scale):
    """(b) A model appears and disappears with the models directory."""
    check(set(d.model_names()) >= {XL} and FAST not in d.model_names(), "(b) before: only " + XL)
    (models_dir / FAST).symlink_to(MODELS / FAST)
    check(d.reload(60 * scale) == "ok", "(b) reload after linking " + FAST)
    check(FAST in d.model_names(), f"(b) {FAST} listed in /v1/models after SIGHUP")
    r = detect(d, FAST)
    check(r.status == 200 and r.json()["model"]["name"] == FAST, f"(b) model={FAST} answers ({r.status})")
    (models_dir / FAST).unlink()
    check(d.reload(60 * scale) == "ok", "(b) reload after unlinking " + FAST)
    r = detect(d, FAST)
    check(FAST not in d.model_names() and r.status == 404 and r.json()["error"]["code"] == "MODEL_NOT_FOUND",
          f"(b) {FAST} gone after SIGHUP ({r.status})")
    (models_dir / FAST).symlink_to(MODELS / FAST)  # for (c)


def test_settings(d, conf, models_dir, keys, scale):
    """(c) What a reload may change, and what needs a restart."""
    check(d.reload(60 * scale) == "ok", "(c) reload with " + FAST + " back")
    write_conf(conf, models_dir, default_model=FAST, keys=keys, workers=3, port=8, cors="https://other.example")
    check(d.reload(60 * scale) == "ok", "(c) reload with a new default model, keys, workers, port and cors")
    names = d.model_names()
    check(names.get(FAST) is True and names.get(XL) is False, f"(c) default model is now {FAST}: {names}")
    r = d.post_raw("/v1/detect", DOG.read_bytes(), "image/jpeg")
    check(r.status == 401, f"(c) keys file now required: no key -> {r.status}")
    r = detect(d)
    check(r.status == 200 and r.json()["model"]["name"] == FAST, f"(c) with the key -> {r.status}, default model")
    log = d.stderr()
    check(all(f"{k} changed, which needs restart" in log for k in ("workers", "port", "cors")),
          "(c) workers, port and cors logged as needing restart")
    check(cors_origin(d) == ORIGIN, "(c) cors keeps its running value")
    metrics = d.get("/metrics", headers={"X-API-Key": KEY}).body.decode()
    check(re.search(r"^visiond_workers 2$", metrics, re.M) is not None, "(c) /metrics still shows 2 workers")
    write_conf(conf, models_dir)
    check(d.reload(60 * scale) == "ok", "(c) reload back to the plain config")
    check(d.post_raw("/v1/detect", DOG.read_bytes(), "image/jpeg").status == 200, "(c) keys off again")


def test_failures(d, conf, models_dir, scale):
    """(d) Reloads that fail keep the running generation."""
    before = d.model_names()
    conf.write_text(conf.read_text() + "no_such_setting = 1\n")
    check(d.reload(30 * scale) == "failed", "(d) unknown key: reload failed")
    check(d.model_names() == before and detect(d).status == 200, "(d) unknown key: still serving the old set")
    check("unknown setting 'no_such_setting'" in d.stderr(), "(d) unknown key: the log names it")

    write_conf(conf, models_dir)
    broken = models_dir / "broken"
    broken.mkdir()
    (broken / "broken.cfg").write_text("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=oops\n")
    (broken / "broken.weights").write_bytes(b"\0" * 20)
    check(d.reload(60 * scale) == "failed", "(d) broken model: reload failed")
    check(d.model_names() == before and detect(d).status == 200, "(d) broken model: still serving the old set")
    shutil.rmtree(broken)

    write_conf(conf, models_dir, keys=models_dir / "no-such-keys-file")
    check(d.reload(30 * scale) == "failed", "(d) missing keys file: reload failed")
    r = d.post_raw("/v1/detect", DOG.read_bytes(), "image/jpeg")
    check(r.status == 200, f"(d) missing keys file: old settings (no keys) still apply ({r.status})")
    write_conf(conf, models_dir)
    check(d.reload(60 * scale) == "ok", "(d) a good config reloads again")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (MODELS / XL).is_dir() or not (MODELS / FAST).is_dir() or not DOG.exists():
        print("SKIP: models or photos missing (scripts/fetch-models)")
        return 77
    sanitizer = sanitizer_of(args.visiond)
    scale = {"tsan": 10, "asan": 3}.get(sanitizer, 1)
    quick = sanitizer == "tsan"
    with_faces = (MODELS / "faces").is_dir() and FACE.exists() and not quick
    with tempfile.TemporaryDirectory(prefix="visiond-reload-") as tmp:
        tmp = pathlib.Path(tmp)
        models_dir = tmp / "models"
        models_dir.mkdir()
        (models_dir / XL).symlink_to(MODELS / XL)
        if with_faces:
            (models_dir / "faces").symlink_to(MODELS / "faces")
        keys = tmp / "keys"
        keys.write_text(KEY + "\n")
        conf = tmp / "visiond.conf"
        write_conf(conf, models_dir)
        env = {k: v for k, v in os.environ.items() if k.startswith(("TSAN_", "ASAN_", "UBSAN_", "LSAN_"))}
        d = ReloadDaemon(args.visiond, conf, env=env, start_timeout=120 * scale)
        try:
            test_in_flight(d, scale, with_faces, 2 if quick else 3)
            if not quick:
                test_models_dir(d, models_dir, scale)
                test_settings(d, conf, models_dir, keys, scale)
                test_failures(d, conf, models_dir, scale)
        except (OSError, ValueError, KeyError) as e:  # e.g. the daemon died: its log says why
            check(False, f"the daemon stopped answering: {e!r}")
        finally:
            code, log = d.stop(60 * scale)
        check(code == 0, f"exit status 0 on SIGTERM ({code})")
        report = daemon.sanitizer_report(log)
        check(not report, "no sanitizer report" + (":\n" + report if report else ""))
        if failures:
            print(log[-4000:])
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
