#!/usr/bin/python3
"""Bad requests against one live `visiond serve` (issue 3, acceptance 4): every case folder in
tests/bad/ is sent to the daemon, whose answer must have the expected status and error code; then
the daemon must still be up (GET /healthz, and a good POST /v1/detect still answers 200) and exit 0 on
SIGTERM. Cases on the face routes (/v1/faces, /v1/verify, /v1/vision/face[/match]) are skipped when
the face models are not installed (those routes then answer 503 to everything). The format of the case folders is described in tests/bad/README.md.

Each answer must also carry X-Request-Id, be JSON that matches proto/openapi.yaml's schema for that path,
method and status (DeepStack's error shape on /v1/vision/detection), and name the expected field when the
case gives one (the message then starts with it).

The daemon runs with --max-body 200000 (so "over the limit" cases stay small) and the default
--max-pixels (40 MP). Generated inputs (truncated photos, PNG/JPEG headers declaring huge sizes, random
bytes) are made here, so no binary files are committed.

usage: test_http_bad.py --visiond build/visiond [--only CASE[,CASE...]]   (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without python3-yaml/-jsonschema or the models.
"""
import argparse
import base64
import pathlib
import re
import http.client
import random
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

try:
    import jsonschema  # noqa: F401
    import yaml  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (needs Debian's python3-yaml and python3-jsonschema: /usr/bin/python3)")
    sys.exit(77)

CASES = daemon.ROOT / "tests" / "bad"
FACE_ROUTES = ("/v1/faces", "/v1/verify", "/v1/vision/face")  # 503 without the face models
FACE_MANIFEST = "face_recognition_model-weights_manifest.json"
MAX_BODY = 200000
READ_TIMEOUT_MS = 2000  # cases that stall (lying Content-Length) are cut after this
# Memory: the corpus is sent PASSES times. The allocator's in-use figure (/metrics
# visiond_heap_in_use_bytes) must come back to the warm-up's after every pass: memory the daemon keeps.
# RSS also holds freed memory that malloc keeps in its per-thread arenas, which the first passes can grow
# (a worker's arena meets its largest request later than in the warm-up), so RSS is checked for steady
# state: the last pass must not raise it over the one before.
PASSES = 3
HEAP_SLACK_KB = 512
RSS_TOLERANCE = 0.05
RSS_SLACK_KB = 2048
BOUNDARY = "visiond-bad-request-boundary"


class CaseError(Exception):
    pass


# ---- body sources -----------------------------------------------------------------------------------

def unescape(s):
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")


def png_header(width, height):
    """A PNG whose IHDR declares width x height (8-bit RGB), with correct CRCs, one small IDAT (the
    first row, so a decoder that ignores the limit would start allocating) and IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\x00" * min(1 + 3 * width, 1 << 16))) + chunk(b"IEND", b""))


def jpeg_header(width, height):
    """A real 16x16 baseline JPEG (cv2) whose SOF0 is patched to declare width x height."""
    import cv2
    import numpy as np
    ok, enc = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(enc.tobytes())
    i = data.find(b"\xff\xc0")
    if not ok or i < 0:
        raise CaseError("cv2 did not produce a baseline JPEG")
    data[i + 5:i + 9] = struct.pack(">HH", height, width)  # FFC0, length(2), precision(1), Y, X
    return bytes(data)


def png_full(width, height, depth, color_type, plte=None, interlace=0):
    """A complete PNG: every row zero (a real zlib stream, compressed as it is built, so an 8000 x 6000
    image costs a few KB here and 144 MB to a decoder without a limit), PLTE with `plte` entries."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = b"\x00" * (1 + (width * channels * depth + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if plte:
        out += chunk(b"PLTE", bytes(i % 256 for i in range(3 * plte)))
    return out + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def patch_sof(data, width, height):
    """A JPEG whose frame header (SOF0/1/2) declares width x height instead."""
    data = bytearray(data)
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            raise CaseError("sof: not a JPEG marker sequence")
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise CaseError("sof: no frame header")


def cv2_encode(ext, width, height, params=()):
    """A width x height gradient image encoded by cv2 (".jpg", ".webp", ...)."""
    import cv2
    import numpy as np
    img = np.fromfunction(lambda y, x, c: (x * 7 + y * 3 + c * 50) % 256, (height, width, 3)).astype(np.uint8)
    ok, enc = cv2.imencode(ext, img, list(params))
    if not ok:
        raise CaseError(f"cv2 could not encode {ext}")
    return enc.tobytes()


def webp_vp8l(width, height):
    """A real 16 x 16 lossless WebP (cv2) whose VP8L header declares width x height (1..16384)."""
    import cv2
    data = bytearray(cv2_encode(".webp", 16, 16, (cv2.IMWRITE_WEBP_QUALITY, 101)))
    if data[12:16] != b"VP8L" or data[20] != 0x2F:
        raise CaseError("webp-vp8l: cv2 did not write a plain lossless WebP")
    bits = struct.unpack("<I", data[21:25])[0] & ~0x0FFFFFFF
    bits |= (width - 1) | (height - 1) << 14
    data[21:25] = struct.pack("<I", bits)
    return bytes(data)


def heif_file(kind, width, height):
    """A real width x height HEIC or AVIF of a gradient, by Debian's heif-enc (libheif-examples)."""
    import shutil
    import subprocess
    import tempfile
    import cv2
    if not shutil.which("heif-enc"):
        raise CaseError("heif-enc missing (scripts/install-deps installs libheif-examples)")
    with tempfile.TemporaryDirectory() as tmp:
        png, out = pathlib.Path(tmp) / "in.png", pathlib.Path(tmp) / f"out.{kind}"
        png.write_bytes(cv2_encode(".png", width, height))
        subprocess.run(["heif-enc", *(["-A"] if kind == "avif" else []), "-q", "50", str(png), "-o", str(out)],
                       check=True, capture_output=True, timeout=120)
        return out.read_bytes()


def patch_ispe(data, width, height):
    """A HEIF whose first ispe property (the primary image's size) declares width x height."""
    i = data.find(b"ispe")
    if i < 0:
        raise CaseError("ispe: no ispe box")
    return data[:i + 8] + struct.pack(">II", width, height) + data[i + 16:]


def source(spec, folder):
    """The bytes of one body source (see tests/bad/README.md)."""
    words = spec.split(None, 1)
    kind, rest = (words[0], words[1] if len(words) > 1 else "")
    args = rest.split()
    if kind == "empty":
        return b""
    if kind == "text":
        return unescape(rest)
    if kind == "file":
        return (folder / rest).read_bytes()
    if kind == "image":
        data = (daemon.SHARED / "images" / args[0]).read_bytes()
        if len(args) == 3 and args[1] == "bytes":
            data = data[:int(args[2])]
        return data
    if kind == "random":
        return random.Random(int(args[1]) if len(args) > 1 else 1).randbytes(int(args[0]))
    if kind == "png":
        return png_header(int(args[0]), int(args[1]))
    if kind == "jpeg":
        return jpeg_header(int(args[0]), int(args[1]))
    if kind == "cut":  # cut N SOURCE: the first N bytes of SOURCE
        return source(rest.split(None, 1)[1], folder)[:int(args[0])]
    if kind == "photo-png":  # photo-png NAME: ../shared/images/NAME re-encoded as PNG (cv2)
        import cv2
        ok, enc = cv2.imencode(".png", cv2.imread(str(daemon.SHARED / "images" / args[0]), cv2.IMREAD_COLOR))
        if not ok:
            raise CaseError(f"cv2 could not re-encode {args[0]}")
        return enc.tobytes()
    if kind == "base64":
        return base64.b64encode(source(rest, folder))
    if kind == "repeat":  # repeat N TEXT: TEXT (escapes as in text) N times
        return unescape(rest.split(None, 1)[1]) * int(args[0])
    if kind == "concat":  # concat SOURCE | SOURCE | ...
        return b"".join(source(part.strip(), folder) for part in rest.split("|"))
    if kind == "pngx":  # pngx W H DEPTH COLOR_TYPE [plte N] [interlace]: a complete PNG of zero rows
        plte = int(args[args.index("plte") + 1]) if "plte" in args else None
        return png_full(int(args[0]), int(args[1]), int(args[2]), int(args[3]), plte, int("interlace" in args))
    if kind == "sof":  # sof W H SOURCE: a JPEG SOURCE whose frame header declares W x H
        return patch_sof(source(rest.split(None, 2)[2], folder), int(args[0]), int(args[1]))
    if kind == "jpeg-progressive":  # jpeg-progressive W H: a real progressive JPEG (cv2)
        import cv2
        return cv2_encode(".jpg", int(args[0]), int(args[1]), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    if kind == "webp":  # webp W H: a real WebP (cv2)
        return cv2_encode(".webp", int(args[0]), int(args[1]))
    if kind == "photo-webp":  # photo-webp NAME: ../shared/images/NAME re-encoded as lossy WebP (cv2, q 80)
        import cv2
        ok, enc = cv2.imencode(".webp", cv2.imread(str(daemon.SHARED / "images" / args[0]), cv2.IMREAD_COLOR),
                               [cv2.IMWRITE_WEBP_QUALITY, 80])
        if not ok:
            raise CaseError(f"cv2 could not re-encode {args[0]}")
        return enc.tobytes()
    if kind == "webp-vp8l":  # webp-vp8l W H: a lossless WebP whose header declares W x H
        return webp_vp8l(int(args[0]), int(args[1]))
    if kind in ("heic", "avif"):  # heic W H, avif W H: a real HEIF file (heif-enc)
        return heif_file(kind, int(args[0]), int(args[1]))
    if kind == "ispe":  # ispe W H SOURCE: a HEIF SOURCE whose ispe declares W x H
        return patch_ispe(source(rest.split(None, 2)[2], folder), int(args[0]), int(args[1]))
    if kind == "json-image":  # {"image_b64": "<base64 of SOURCE>"}
        return b'{"image_b64": "' + base64.b64encode(source(rest, folder)) + b'"}'
    raise CaseError(f"unknown body source {kind!r}")


def parse_request(folder):
    req = {"method": "POST", "path": "/v1/detect", "headers": [], "body": None, "parts": [], "raw": False,
           "close_write": False}
    for n, raw in enumerate((folder / "request").read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        value = value.strip()
        if not sep:
            raise CaseError(f"{folder.name}/request:{n}: expected 'key: value'")
        if key == "method":
            req["method"] = value
        elif key == "path":
            req["path"] = value
        elif key == "header":
            name, sep, hval = value.partition(":")
            if not sep:
                raise CaseError(f"{folder.name}/request:{n}: header needs 'Name: value'")
            req["headers"].append((name.strip(), hval.strip()))
        elif key == "headers":  # headers: N NAME VALUE: N headers NAME-0 .. NAME-(N-1)
            count, name, hval = value.split(None, 2)
            req["headers"] += [(f"{name}-{i}", hval) for i in range(int(count))]
        elif key == "header-from":  # header-from: NAME SOURCE: a header whose value is SOURCE's bytes
            name, spec = value.split(None, 1)
            req["headers"].append((name, source(spec, folder).decode("latin-1")))
        elif key == "parts":  # parts: N NAME VALUE: N text parts NAME-0 .. NAME-(N-1)
            count, name, pval = value.split(None, 2)
            req["parts"] += [(f"{name}-{i}", "-", "-", f"text {pval}") for i in range(int(count))]
        elif key == "path-append":  # path-append: SOURCE: SOURCE's bytes added to the path
            req["path"] += source(value, folder).decode("latin-1")
        elif key == "raw":  # raw: yes: sent as written over a socket, no Content-Length added
            req["raw"] = value == "yes"
        elif key == "close-write":  # close-write: yes: the client shuts its sending side after the body
            req["close_write"] = value == "yes"
        elif key == "body":
            req["body"] = value
        elif key == "part":
            name, filename, ctype, spec = value.split(None, 3)
            req["parts"].append((name, filename, ctype, spec))
        else:
            raise CaseError(f"{folder.name}/request:{n}: unknown key {key!r}")
    headers = dict(req["headers"])
    if req["body"] == "multipart":
        fields = []
        for name, filename, ctype, spec in req["parts"]:
            data = source(spec, folder)
            if filename == "-":
                fields.append((name, data.decode("latin-1")))
            else:
                fields.append((name, (filename, data, "application/octet-stream" if ctype == "-" else ctype)))
        body, ctype = daemon.multipart(fields, BOUNDARY)
        headers.setdefault("Content-Type", ctype)
    elif req["body"] is not None:
        body = source(req["body"], folder)
    else:
        body = None
    if req["raw"]:
        return req["method"], req["path"], req["headers"], body, req["close_write"]
    return req["method"], req["path"], headers, body


def parse_expected(folder):
    lines = [x.strip() for x in (folder / "expected").read_text(encoding="utf-8").splitlines()
             if x.strip() and not x.startswith("#")]
    if lines[0] == "closed":  # no answer: the daemon closes the connection
        return {"status": None, "code": "closed", "field": None, "headers": []}
    status, code = lines[0].split()
    exp = {"status": int(status), "code": code, "field": None, "headers": []}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key == "field":
            exp["field"] = value.strip()
        elif key == "header":
            exp["headers"].append(value.strip())
        else:
            raise CaseError(f"{folder.name}/expected: unknown key {key!r}")
    return exp


# ---- running ----------------------------------------------------------------------------------------

def send_raw(d, method, path, headers, body, close_write, timeout=30):
    """Sends a request exactly as written over a new socket; returns the first answer (a daemon.Response)
    or None if the daemon closed the connection without one."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        try:
            s.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
            if close_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before everything was sent: the answer may be waiting
        resp = http.client.HTTPResponse(s, method=method)
        try:
            resp.begin()
            data = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        return daemon.Response(resp.status, resp.reason, resp.headers, data)
    finally:
        s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def wait_idle(d, timeout=10.0):
    """Until no worker is busy and nothing is queued: a worker frees its request's memory after it
    has handed the answer over."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        text = d.get("/metrics").body.decode()
        if re.search(r"^visiond_workers_busy 0$", text, re.M) and re.search(r"^visiond_queue_depth 0$", text, re.M):
            return
        time.sleep(0.1)


def heap_kb(d):
    m = re.search(r"^visiond_heap_in_use_bytes (\d+)$", d.get("/metrics").body.decode(), re.M)
    return int(m.group(1)) / 1024 if m else None


def sanitized(pid):
    """True for an ASan/TSan build: their allocators keep freed memory (ASan's quarantine alone holds
    up to 256 MB), so RSS says nothing about leaks there (LeakSanitizer does that job)."""
    with open(f"/proc/{pid}/maps", encoding="latin-1") as f:
        return any("libasan" in line or "libtsan" in line for line in f)

def run_case(c, api, d, folder):
    name = folder.name
    failed_before = len(c.failed)
    spec = parse_request(folder)
    method, path, headers, body = spec[:4]
    exp = parse_expected(folder)
    t0 = time.monotonic()
    if len(spec) == 5:
        r = send_raw(d, *spec)
    else:
        r = d.request(method, path, body=body, headers=headers, timeout=30)
    if exp["code"] == "closed":
        took = time.monotonic() - t0
        if c.check(name, r is None, "the daemon closes the connection without an answer", repr(r)):
            print(f"ok   {name}: closed after {took:.1f} s", flush=True)
        return
    if not c.check(name, r is not None, "an answer", "the connection was closed without one"):
        return
    c.check(name, r.status == exp["status"], f"status {exp['status']}", f"got {r!r}")
    if exp["code"] == "(http)":  # malformed HTTP: libmicrohttpd answers before visiond sees a request
        if len(c.failed) == failed_before:
            print(f"ok   {name}: {r.status} (http) {r.reason}", flush=True)
        return
    c.check(name, r.header("X-Request-Id") is not None, "X-Request-Id header")
    c.check(name, (r.header("Content-Type") or "").startswith("application/json"), "JSON answer",
            str(r.header("Content-Type")))
    for h in exp["headers"]:
        c.check(name, r.header(h) is not None, f"header {h}", str(dict(r.headers)))
    try:
        doc = r.json()
    except ValueError as e:
        c.check(name, False, "body is JSON", f"{e}: {r.body[:200]!r}")
        return
    problems = api.validate(path.split("?")[0], method, r.status, doc)
    c.check(name, not problems, "body matches proto/openapi.yaml", "; ".join(problems[:3]))
    if exp["code"] == "(deepstack)":
        c.check(name, doc.get("success") is False and doc.get("code") == r.status and doc.get("error"),
                "DeepStack error shape with the status as code", str(doc))
        if len(c.failed) == failed_before:
            print(f"ok   {name}: {r.status} (DeepStack) {str(doc.get('error'))[:100]}", flush=True)
        return
    if exp["code"] == "(ok)":  # not an error: bytes that once were refused and now decode
        c.check(name, "error" not in doc, "an answer, not an error", str(doc)[:300])
        if len(c.failed) == failed_before:
            print(f"ok   {name}: {r.status} (ok)", flush=True)
        return
    err = doc.get("error", {}) if isinstance(doc, dict) else {}
    c.check(name, err.get("code") == exp["code"], f"error code {exp['code']}", str(doc))
    c.check(name, doc.get("request_id") == r.header("X-Request-Id"), "request_id is the header's")
    if exp["field"] is not None:
        c.check(name, err.get("field") == exp["field"], f"field {exp['field']}", str(doc))
        c.check(name, str(err.get("message", "")).startswith(exp["field"] + ": "),
                "the message starts with the field", str(err.get("message")))
    if len(c.failed) == failed_before:
        print(f"ok   {name}: {r.status} {err.get('code')} {err.get('message', '')[:100]}", flush=True)


def warm_up(d):
    """Good requests of each kind, so RSS is sampled once the daemon has decoded and run real photos."""
    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    for _ in range(2):
        d.post_raw("/v1/detect", dog, "image/jpeg")
        d.post_multipart("/v1/detect", [("image", ("dog.jpg", dog, "image/jpeg"))])
        d.post_json("/v1/detect", {"image_b64": base64.b64encode(dog).decode()})
        d.post_raw("/v1/faces", dog, "image/jpeg")
        d.post_multipart("/v1/verify", [("image1", ("a.jpg", dog, "image/jpeg")), ("image2", ("b.jpg", dog, "image/jpeg"))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--only", help="comma-separated case names")
    args = ap.parse_args()
    if not (daemon.ROOT / "models").is_dir() or not (daemon.SHARED / "images" / "dog.jpg").exists():
        print("SKIP: needs ./models (scripts/fetch-models) and ../shared/images")
        return 77
    folders = sorted(p for p in CASES.iterdir() if p.is_dir())
    if args.only:
        want = set(args.only.split(","))
        folders = [p for p in folders if p.name in want]
    if not (daemon.ROOT / "models" / "faces" / FACE_MANIFEST).exists():
        skipped = [p.name for p in folders if parse_request(p)[1].startswith(FACE_ROUTES)]
        folders = [p for p in folders if p.name not in skipped]
        print(f"no face models in models/faces: {len(skipped)} face-route cases skipped")
    c = daemon.Checks()
    api = daemon.OpenApi()
    with daemon.Daemon(pathlib.Path(args.visiond).resolve(), "--max-body", str(MAX_BODY),
                       "--read-timeout-ms", str(READ_TIMEOUT_MS)) as d:
        warm_up(d)
        base_kb, base_heap = rss_kb(d.proc.pid), heap_kb(d)
        rss, heap = [base_kb], [base_heap]
        for n in range(1, PASSES + 1):
            for folder in folders:
                try:
                    run_case(c, api, d, folder)
                except (CaseError, OSError) as e:
                    c.check(folder.name, False, "case ran", repr(e))
                if not d.alive():
                    c.check(folder.name, False, "the daemon is still running after this case", d.stderr()[-2000:])
                    break
            if not d.alive():
                break
            if not args.only:
                wait_idle(d)
                rss.append(rss_kb(d.proc.pid))
                heap.append(heap_kb(d))
            print(f"-- pass {n} done" + (f"; {PASSES - n} more, for memory" if n < PASSES else ""), flush=True)
        if d.alive() and not args.only:
            print("memory after the warm-up and each pass: RSS " + ", ".join(f"{x / 1024:.1f}" for x in rss) +
                  " MiB; heap in use " + ", ".join(f"{x / 1024:.2f}" if x is not None else "?" for x in heap) +
                  " MiB")
            if sanitized(d.proc.pid):
                print("memory not checked: sanitizer build (its allocator keeps freed memory; LeakSanitizer "
                      "checks leaks)")
            else:
                c.check("after", None not in heap, "/metrics has visiond_heap_in_use_bytes", str(heap))
                if None not in heap:
                    c.check("after", all(h <= base_heap + HEAP_SLACK_KB for h in heap[1:]),
                            f"heap in use back to the warm-up level (+{HEAP_SLACK_KB} kB) after every pass",
                            f"{[round(h) for h in heap]} kB")
                c.check("after", rss[-1] <= rss[-2] * (1 + RSS_TOLERANCE) + RSS_SLACK_KB,
                        f"RSS steady: the last pass does not raise it (+{RSS_TOLERANCE:.0%} + "
                        f"{RSS_SLACK_KB // 1024} MiB)", f"{rss} kB")
        if d.alive():
            r = d.get("/healthz")
            c.check("after", r.status == 200, "GET /healthz answers 200 after every bad request", repr(r))
            dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
            r = d.post_raw("/v1/detect", dog, "image/jpeg")
            c.check("after", r.status == 200 and r.json()["count"] > 0,
                    "a good POST /v1/detect still answers 200 with detections", repr(r))
        code, err = d.stop()
    c.check("after", code == 0, "the daemon exits 0 on SIGTERM", f"exit {code}")
    c.check("after", "stopped (0 requests unfinished)" in err, "nothing left unfinished", err[-500:])
    report = daemon.sanitizer_report(err)
    c.check("after", not report, "no sanitizer report on stderr", report)
    print(f"{len(folders)} cases")
    return c.summary("test_http_bad")


if __name__ == "__main__":
    sys.exit(main())
