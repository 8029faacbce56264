#!/usr/bin/python3
"""Concurrency, back-pressure, deadlines and shutdown of `visiond serve` (issue 3, acceptance 3).

Each scenario starts its own daemon on an ephemeral port on 127.0.0.1 (`--port 0`, the port parsed from the
`listening on 127.0.0.1:PORT` log line) and calls it over HTTP with http.client from threads:

  a. 200 POST /v1/detect from 16 concurrent clients, the six ../shared/images/*.jpg as raw body, multipart and
     JSON base64, mostly yolo-fastest-1.1 and every 8th request yolo-fastest-1.1-xl: all 200, each detection
     list exactly equal (class, label, confidence, box) to that image's answer to a lone request.
  b. --workers 1 --queue 2, 32 concurrent clients x 2 requests: some 503 QUEUE_FULL with Retry-After, each
     every other answer is a correct 200; then, with the worker and the queue held by three slow requests,
     a request is refused with 503 while the last of them is still unanswered (a refusal must not wait
     for a worker: an order, not a time limit).
  c. --workers 1: three slow requests (a 4000x3000 JPEG upscaled with cv2) occupy the worker and the queue,
     then 8 requests with timeout_ms=1 (4 as query parameter, 4 as X-Timeout-Ms header) wait behind them:
     each gets 504 TIMEOUT; the slow ones still get 200.
  d. SIGTERM during a burst: 32 requests are in the daemon (counted through /metrics); 8 more clients start
     sending from 20 ms before SIGTERM to 22 ms after it, each until its connection is refused. None of the 32
     is lost (all 200 and correct); every other request the daemon logged (by X-Request-Id) got a complete
     answer with the logged status (200 and correct, or 503 NOT_READY); connections after the daemon said
     "stopping" are refused; the daemon exits 0 with "0 requests unfinished".
  e. Clients that disconnect mid-upload, and while their job is queued or running (FIN and RST), do not crash
     or wedge the daemon: the worker goes idle, the next request gets the right answer, exit 0 with nothing
     unfinished.

Every daemon must exit 0 on SIGTERM, say "0 requests unfinished", and leave no sanitizer report (ASan, LSan,
UBSan, TSan) in its stderr: run this against build-asan/visiond or build-tsan/visiond (with e.g.
TSAN_OPTIONS=halt_on_error=1, passed through to the daemon) for the sanitizer checks. Sanitizer builds are
slower (TSan runs the model ~25x slower), so waits are scaled and (d) uses the small model there.

usage: test_http_concurrency.py --visiond build/visiond [--only abcde]   (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 if cv2/numpy or the models are missing.
"""
import argparse
import base64
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import cv2
except ImportError:
    print("SKIP: python3-opencv not installed")
    sys.exit(77)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path("../shared")  # tests run from the project root; CI has ../shared there too
IMAGES = sorted((SHARED / "images").glob("*.jpg"))
FAST, XL = "yolo-fastest-1.1", "yolo-fastest-1.1-xl"
SANITIZER_RE = re.compile(r"WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                          r"runtime error:|SUMMARY: \w+Sanitizer|ThreadSanitizer: reported")

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        if len(failures) <= 30:  # a dead daemon fails every request after it; the first ones tell
            print("FAIL:", msg, flush=True)
    return cond


def sanitizer_of(binary):
    data = pathlib.Path(binary).read_bytes()
    if b"__tsan_init" in data:
        return "tsan"
    if b"__asan_init" in data:
        return "asan"
    return None


# ---- the daemon ---------------------------------------------------------------------------------------

class Daemon:
    """`visiond serve --port 0 ARGS` with stderr in a file; the constructor waits for the listening line."""

    def __init__(self, visiond, args, tag, scale):
        fd, path = tempfile.mkstemp(prefix=f"visiond-conc-{tag}-", suffix=".log")
        os.close(fd)
        self.log_path = pathlib.Path(path)
        self.tag, self.scale = tag, scale
        self.err = open(self.log_path, "wb")
        self.proc = subprocess.Popen([visiond, "serve", "--port", "0", "--models", "models", *args], cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err)
        self.port = None
        self.checked = False
        self.final_log = None  # the log's text once the daemon has exited
        deadline = time.monotonic() + 30 * scale
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"daemon {tag} did not start (rc {self.proc.returncode}):\n{self.log()[-3000:]}")

    def log(self):
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(errors="replace")

    def log_lines(self):
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def alive(self):
        return self.proc.poll() is None

    def stop(self, already_signalled=False):
        """SIGTERM (unless sent already), wait, check exit 0, nothing unfinished, no sanitizer report."""
        if not already_signalled and self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60 * self.scale)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            check(False, f"{self.tag}: daemon did not exit within {60 * self.scale} s of SIGTERM (killed)")
        self.err.close()
        self.checked = True
        text = self.final_log = self.log()
        if not check(rc == 0, f"{self.tag}: daemon exited {rc}, expected 0 (log kept: {self.log_path})"):
            print("\n".join(text.splitlines()[-40:]))
        m = re.search(r"stopped \((\d+) requests unfinished\)", text)
        check(m is not None and m.group(1) == "0",
              f"{self.tag}: daemon did not finish every request: {m.group(0) if m else 'no stopped line'}")
        reports = [line for line in text.splitlines() if SANITIZER_RE.search(line)]
        if not check(not reports, f"{self.tag}: sanitizer report in the daemon's stderr ({self.log_path})"):
            lines = text.splitlines()
            first = next(i for i, line in enumerate(lines) if SANITIZER_RE.search(line))
            print("\n".join(lines[max(0, first - 2):first + 60]))
        elif rc == 0:
            self.log_path.unlink()
        return rc

    def cleanup(self):
        """After a scenario that raised: stop and check the daemon all the same (a crash report is in its log)."""
        if not self.checked:
            self.stop()


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def detect_requests_seen(m):
    """Detect jobs the daemon has taken: queued + running + answered."""
    done = sum(v for k, v in m.items() if k.startswith('visiond_requests_total{route="detect"'))
    return m.get("visiond_queue_depth", 0) + m.get("visiond_workers_busy", 0) + done


def pool_is(port, busy, queued):
    m = metrics(port)
    return m.get("visiond_workers_busy") == busy and m.get("visiond_queue_depth") == queued


def wait_for(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---- requests -----------------------------------------------------------------------------------------

class Result:
    def __init__(self, status=None, headers=None, body=b"", ms=0.0, error=None):
        self.status, self.headers, self.body, self.ms, self.error = status, headers or {}, body, ms, error
        self.json = None
        if body:
            try:
                self.json = json.loads(body)
            except ValueError:
                pass

    def code(self):
        return (self.json or {}).get("error", {}).get("code") if isinstance(self.json, dict) else None


def encode(image, form, model=None, params=None):
    """(path, body, headers) of a /v1/detect request in one of the three input forms."""
    params = dict(params or {})
    if model:
        params["model"] = model
    if form == "raw":
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return "/v1/detect" + ("?" + query if query else ""), image, {"Content-Type": "image/jpeg"}
    if form == "multipart":
        boundary = "visiondconcurrencytestboundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in params.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n'
                     f'Content-Type: image/jpeg\r\n\r\n'.encode() + image + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return "/v1/detect", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    doc = dict(params, image_b64=base64.b64encode(image).decode())
    return "/v1/detect", json.dumps(doc).encode(), {"Content-Type": "application/json"}


def post(port, path, body, headers, timeout):
    """One request on a new connection; a connection error (refused, reset, truncated answer) is r.error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        return Result(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data,
                      (time.monotonic() - t0) * 1e3)
    except (OSError, http.client.HTTPException) as e:
        return Result(error=e, ms=(time.monotonic() - t0) * 1e3)
    finally:
        conn.close()


def detect(port, image, form="raw", model=None, params=None, headers=None, timeout=60):
    path, body, hdrs = encode(image, form, model, params)
    hdrs.update(headers or {})
    return post(port, path, body, hdrs, timeout)


def answer_key(r):
    """What must not change between a lone request and a loaded server: image size and every detection."""
    j = r.json
    return (j["model"]["name"], j["image"]["width"], j["image"]["height"],
            tuple((d["class_id"], d["label"], d["confidence"],
                   d["box"]["x1"], d["box"]["y1"], d["box"]["x2"], d["box"]["y2"]) for d in j["detections"]))


def run_clients(n_clients, jobs, fn):
    """Runs fn(job) for every job from n_clients threads released together; returns results in job order."""
    results = [None] * len(jobs)
    next_job = iter(range(len(jobs)))
    lock = threading.Lock()
    barrier = threading.Barrier(n_clients)

    def client():
        barrier.wait()
        while True:
            with lock:
                i = next(next_job, None)
            if i is None:
                return
            results[i] = fn(jobs[i])

    threads = [threading.Thread(target=client) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def row(name, results, note=""):
    by = {}
    for r in results:
        key = r.status if r.status is not None else "conn"
        by[key] = by.get(key, 0) + 1
    ms = [r.ms for r in results if r.status is not None]
    return dict(name=name, n=len(results), s200=by.get(200, 0), s503=by.get(503, 0), s504=by.get(504, 0),
                other=sum(v for k, v in by.items() if k not in (200, 503, 504)),
                p50=pct(ms, 50), max=max(ms) if ms else float("nan"), note=note)


# ---- scenarios ----------------------------------------------------------------------------------------

def references(port, images):
    """The answer to a lone raw request, per (image, model)."""
    refs = {}
    for name, data in images.items():
        for model in (FAST, XL):
            r = detect(port, data, "raw", model)
            if check(r.status == 200, f"reference {name} {model}: status {r.status} {r.error or r.body[:200]}"):
                refs[(name, model)] = answer_key(r)
    check(any(len(v[3]) > 0 for v in refs.values()), "references: no image has any detection")
    return refs


def scenario_a(visiond, images, scale, refs_out):
    # 200 requests queue up for a while under a sanitizer: no deadline should cut in.
    d = Daemon(visiond, ["--default-model", FAST, "--timeout-ms", str(60000 * scale)], "a", scale)
    try:
        refs = references(d.port, images)
        refs_out.update(refs)
        names = sorted(images)
        forms = ["raw", "multipart", "json"]
        jobs = [(names[i % len(names)], XL if i % 8 == 7 else FAST, forms[i % 3]) for i in range(200)]
        t0 = time.monotonic()
        # The small model is the default; the big one is named in the query, form field or JSON.
        results = run_clients(16, jobs, lambda j: detect(d.port, images[j[0]], j[2], j[1] if j[1] == XL else None,
                                                         timeout=120 * scale))
        wall = time.monotonic() - t0
        bad = 0
        for (name, model, form), r in zip(jobs, results):
            what = f"a: {name} {model} {form}"
            if not check(r.status == 200, f"{what}: status {r.status} {r.error or r.body[:200]}"):
                bad += 1
            elif not check(answer_key(r) == refs.get((name, model)), f"{what}: answer differs from the lone "
                           f"request's:\n  got  {answer_key(r)}\n  want {refs.get((name, model))}"):
                bad += 1
        d.stop()
    finally:
        d.cleanup()
    return row("a. 200 requests, 16 clients", results, f"{len(results) / wall:.1f} req/s, {bad} wrong")


def refusal_before_queued_work(d, dog, big, scale):
    """A refusal must not wait for a worker: with the worker and the queue (2) held by three slow
    requests (4000x3000 JPEGs), a request is refused with 503 before that queued work is done, i.e.
    while the last slow request is still unanswered. An order, not a time: it holds on any machine.
    On a loaded machine the first slow job may end before the third is in (or before the request), so
    the pool is not full when asked: then the attempt is repeated (3 at most; a daemon that never refuses
    still fails)."""
    refused = 0
    for _ in range(3):
        # The worker counts itself busy until just after its last answer went out: start from an idle
        # pool, or the first slow request finds the worker still busy and the third one is refused.
        idle = wait_for(lambda: pool_is(d.port, busy=0, queued=0), 30 * scale)
        check(idle, "b: the pool did not become idle before the slow requests")
        # One at a time, each once the last is in: sent together, the three could all reach the queue
        # before the worker takes the first, and the third would be refused.
        slow, full = [], True
        for k in range(3):
            slow.append(start_async(detect, d.port, big, "raw", None, None, None, 120 * scale))
            full = full and wait_for(lambda: pool_is(d.port, busy=1, queued=k), 30 * scale)
        r = detect(d.port, dog, timeout=120 * scale) if full else None
        pending = slow[-1][0].is_alive()
        for t, _ in slow:
            t.join()
        refused += sum(box["r"].status == 503 for _, box in slow) + int(r is not None and r.status == 503)
        check(all(box["r"].status == 200 for _, box in slow),
              f"b: the slow requests answered {[box['r'].status for _, box in slow]}, not all 200")
        if r is not None and r.status == 503:
            break  # else the pool emptied between the look and the request: the order shows nothing
    check(r is not None, "b: the slow requests never filled the worker and the queue (3 attempts)")
    if r is None:
        return "pool never seen full", refused
    check(r.status == 503 and r.code() == "QUEUE_FULL", f"b: with worker and queue full: status {r.status} "
          f"code {r.code()} {r.error or ''}")
    check(pending, f"b: the 503 ({r.ms:.0f} ms) came after the queued work was done: it waited for a worker")
    return (f"503 before the queued work: {r.ms:.0f} ms vs {max(box['r'].ms for _, box in slow):.0f} ms",
            refused)


def scenario_b(visiond, images, scale, refs, big):
    d = Daemon(visiond, ["--default-model", FAST, "--workers", "1", "--queue", "2"], "b", scale)
    names = sorted(images)
    try:
        jobs = [names[i % len(names)] for i in range(64)]
        results = run_clients(32, jobs, lambda name: detect(d.port, images[name], timeout=120 * scale))
        n503 = 0
        for name, r in zip(jobs, results):
            if r.status == 200:
                check(answer_key(r) == refs.get((name, FAST)), f"b: {name}: answer differs from the lone one's")
            elif r.status == 503:
                n503 += 1
                check(r.code() == "QUEUE_FULL", f"b: 503 with code {r.code()}, expected QUEUE_FULL")
                check(r.headers.get("retry-after", "").isdigit(), f"b: 503 without Retry-After: {r.headers}")
            else:
                check(False, f"b: {name}: status {r.status} {r.error or r.body[:200]}")
        check(n503 > 0, "b: no request was refused with 503 although 32 clients share 1 worker and a queue of 2")
        check(any(r.status == 200 for r in results), "b: no request succeeded")
        refusal, more = refusal_before_queued_work(d, images["dog.jpg"], big, scale)
        m = metrics(d.port)
        check(m.get("visiond_jobs_rejected_total") == n503 + more,
              f"b: visiond_jobs_rejected_total {m.get('visiond_jobs_rejected_total')} != {n503 + more} refusals seen")
        d.stop()
    finally:
        d.cleanup()
    ms503 = [r.ms for r in results if r.status == 503]
    return row("b. queue 2, 1 worker, 32 clients", results,
               f"503 in p50 {pct(ms503, 50):.1f} / max {max(ms503, default=float('nan')):.1f} ms; {refusal}")


def big_jpeg(image):
    """A 4000x3000 JPEG of an upscaled image: slow to decode, so it holds the worker."""
    img = cv2.imdecode(__import__("numpy").frombuffer(image, dtype="uint8"), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".jpg", cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def start_async(fn, *args):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", fn(*args)))
    t.start()
    return t, box


def scenario_c(visiond, images, scale, big):
    d = Daemon(visiond, ["--default-model", FAST, "--workers", "1"], "c", scale)
    try:
        slow = [start_async(detect, d.port, big, "raw", None, None, None, 120 * scale) for _ in range(3)]
        # All three slow jobs are in: one runs, two wait. Anything sent now waits far longer than 1 ms.
        check(wait_for(lambda: pool_is(d.port, busy=1, queued=2), 30 * scale),
              "c: the slow requests did not fill the worker and queue")
        dog = images["dog.jpg"]
        jobs = [("query", {"timeout_ms": 1}, None) if i % 2 == 0 else ("header", None, {"X-Timeout-Ms": "1"})
                for i in range(8)]
        results = run_clients(8, jobs, lambda j: detect(d.port, dog, "raw", None, j[1], j[2], timeout=120 * scale))
        for t, _ in slow:
            t.join()
        for (how, _, _), r in zip(jobs, results):
            check(r.status == 504 and r.code() == "TIMEOUT",
                  f"c: timeout 1 ms by {how}: status {r.status} code {r.code()} {r.error or ''}")
        for _, box in slow:
            r = box["r"]
            check(r.status == 200, f"c: slow request: status {r.status} {r.error or r.body[:200]}")
        # The counter moves when the expired callback returns, a moment after its reply went out.
        expired = wait_for(lambda: metrics(d.port).get("visiond_jobs_expired_total") == 8, 5 * scale)
        check(expired, f"c: {metrics(d.port).get('visiond_jobs_expired_total')} jobs expired, expected 8")
        d.stop()
    finally:
        d.cleanup()
    slow_ms = max(box["r"].ms for _, box in slow)
    return row("c. timeout_ms=1 behind slow jobs", results + [box["r"] for _, box in slow],
               f"slow 4000x3000 jobs done in {slow_ms:.0f} ms")


def connect_refused(port):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def scenario_d(visiond, images, scale, refs, sanitizer, big):
    model = XL if sanitizer is None else FAST
    long_ms = str(min(600000, 120000 * scale))  # this is about shutdown, not deadlines
    d = Daemon(visiond, ["--default-model", model, "--drain-timeout-ms", long_ms, "--timeout-ms", long_ms], "d",
               scale)
    # Enough queued work to still be draining when new connections are tried after SIGTERM, however fast
    # the engine: every 4th burst request is a 4000x3000 JPEG (its answer from a lone request first), and
    # the refusal check needs a burst request still unanswered at that moment (an order, not a time).
    images = dict(images, **{"big.jpg": big})
    refs = dict(refs)
    r = detect(d.port, big, timeout=180 * scale)
    if check(r.status == 200, f"d: lone big request: {r.status} {r.error or r.body[:200]}"):
        refs[("big.jpg", model)] = answer_key(r)
    names = sorted(n for n in images if n != "big.jpg")
    burst, late = {}, {}
    lock = threading.Lock()
    stop_late = threading.Event()
    try:
        def one(rid, name, store):
            r = detect(d.port, images[name], headers={"X-Request-Id": rid}, timeout=180 * scale)
            with lock:
                store[rid] = (name, r)
            return r

        threads = [threading.Thread(target=one, args=(f"burst-{i}", "big.jpg" if i % 4 == 3 else names[i % len(names)],
                                                      burst))
                   for i in range(32)]
        for t in threads:
            t.start()
        seen = wait_for(lambda: detect_requests_seen(metrics(d.port)) >= 33, 30 * scale)
        check(seen, "d: the 32 burst requests did not all reach the daemon")
        m = metrics(d.port)
        in_daemon = int(m.get("visiond_queue_depth", 0) + m.get("visiond_workers_busy", 0))

        def late_client(k):  # starts k * 6 ms after the first, across SIGTERM and the listener's closing
            time.sleep(0.006 * k)
            i = 0
            while not stop_late.is_set():
                r = one(f"late-{k}-{i}", names[(k + i) % len(names)], late)
                i += 1
                if r.error is not None and isinstance(r.error, ConnectionRefusedError):
                    return

        late_threads = [threading.Thread(target=late_client, args=(k,)) for k in range(8)]
        for t in late_threads:
            t.start()
        time.sleep(0.02)
        d.proc.send_signal(signal.SIGTERM)
        stopping = wait_for(lambda: "stopping: finishing" in d.log(), 10 * scale)
        check(stopping, "d: the daemon did not log 'stopping' after SIGTERM")
        time.sleep(0.2)  # the listening socket is closed right after that line
        draining = any(t.is_alive() for t in threads)
        refused = [connect_refused(d.port) for _ in range(5)] if d.alive() else []
        check(draining, "d: the burst was answered before new connections could be tried: no drain to test")
        check(refused and all(refused), f"d: new connections during the drain were not all refused: {refused} "
                                        f"(empty: the daemon had exited already)")
        for t in threads:
            t.join()
        stop_late.set()
        for t in late_threads:
            t.join()
        d.stop(already_signalled=True)
    finally:
        stop_late.set()
        d.cleanup()

    for rid, (name, r) in sorted(burst.items()):
        if check(r.status == 200, f"d: {rid} (in the daemon at SIGTERM) got {r.status} {r.error or r.body[:200]}"):
            check(answer_key(r) == refs.get((name, model)), f"d: {rid}: answer differs from the lone request's")
    logged = {j["request_id"]: j["status"] for j in d.log_lines() if j.get("route") == "detect"}
    outcome = {"200": 0, "503": 0, "refused": 0, "reset before accept": 0}
    for rid, (name, r) in sorted(late.items()):
        if rid in logged:  # the daemon accepted it: the client must have the whole answer
            if not check(r.status == logged[rid] and r.status in (200, 503),
                         f"d: {rid} accepted (logged {logged[rid]}) but the client got {r.status} {r.error!r}"):
                continue
            outcome[str(r.status)] += 1
            if r.status == 200:
                check(answer_key(r) == refs.get((name, model)), f"d: {rid}: answer differs from the lone one's")
            else:
                check(r.code() == "NOT_READY", f"d: {rid}: 503 with code {r.code()}")
        elif isinstance(r.error, ConnectionRefusedError):
            outcome["refused"] += 1
        elif r.error is not None:
            outcome["reset before accept"] += 1  # in the kernel's backlog when the listener closed
        else:
            check(False, f"d: {rid} answered {r.status} but not in the daemon's log")
    for rid, status in logged.items():
        check(status != 0, f"d: the daemon logged {rid} as abandoned (status 0)")
    results = [r for _, r in burst.values()] + [r for _, r in late.values()]
    late_note = ", ".join(f"{k} {v}" for k, v in outcome.items())
    return row("d. SIGTERM during a burst", results,
               f"{in_daemon} of 32 queued/running at SIGTERM; late: {late_note}")


def raw_request_head(path, length):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def abandon(port, body, fraction, rst, wait_s=0.0, until=None):
    """Sends the head and `fraction` of body, optionally waits (or until `until()`), then closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if rst:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(raw_request_head("/v1/detect", len(body)) + body[:int(len(body) * fraction)])
    if until:
        wait_for(until, 30)
    time.sleep(wait_s)
    s.close()


def scenario_e(visiond, images, scale, refs, big):
    d = Daemon(visiond, ["--default-model", FAST, "--workers", "1"], "e", scale)
    results = []
    try:
        for i in range(6):  # mid-upload: the body never completes
            abandon(d.port, big, 0.5, rst=i % 2 == 1, wait_s=0.05)
        for i in range(4):  # while the job runs (the big image takes a while to decode)
            abandon(d.port, big, 1.0, rst=i % 2 == 1,
                    until=lambda: metrics(d.port).get("visiond_workers_busy") == 1)
        # While queued: the first holds the worker, the next two wait in the queue when they go away.
        socks = []
        for i in range(3):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            if i == 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(raw_request_head("/v1/detect", len(big)) + big)
            socks.append(s)
        wait_for(lambda: metrics(d.port).get("visiond_queue_depth", 0) >= 1, 30 * scale)
        for s in socks:
            s.close()
        idle = wait_for(lambda: pool_is(d.port, busy=0, queued=0), 60 * scale, 0.05)
        check(idle, "e: the worker did not go idle after the clients left")
        for name in sorted(images):
            r = detect(d.port, images[name], timeout=60 * scale)
            results.append(r)
            check(r.status == 200 and answer_key(r) == refs.get((name, FAST)),
                  f"e: after the disconnects, {name}: status {r.status} {r.error or ''} or wrong answer")
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("GET", "/healthz")
        check(conn.getresponse().status == 200, "e: /healthz after the disconnects")
        conn.close()
        m = metrics(d.port)
        gone = m.get('visiond_requests_total{route="detect",status="0"}', 0)
        d.stop()
    finally:
        d.cleanup()
    return row("e. clients leaving mid-upload/queued/running", results,
               f"13 abandoned, {int(gone)} logged as client gone; then 6 correct answers")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visiond", default="build/visiond")
    ap.add_argument("--only", default="abcde", help="scenarios to run (b-e need a's reference answers)")
    args = ap.parse_args()
    os.chdir(ROOT)
    visiond = str(pathlib.Path(args.visiond).resolve())
    if len(IMAGES) < 6 or not all((ROOT / "models" / m / f"{m}.cfg").exists() for m in (FAST, XL)):
        print("SKIP: ../shared/images or ./models (scripts/fetch-models) missing")
        return 77
    sanitizer = sanitizer_of(visiond)
    scale = {"tsan": 10, "asan": 3}.get(sanitizer, 1)
    print(f"visiond: {visiond} ({sanitizer or 'no sanitizer'}); waits x{scale}")
    images = {p.name: p.read_bytes() for p in IMAGES}
    big = big_jpeg(images["dog.jpg"])
    refs = {}
    rows = []
    t0 = time.monotonic()
    scenarios = (("a", "a. 200 requests, 16 clients", lambda: scenario_a(visiond, images, scale, refs)),
                 ("b", "b. queue 2, 1 worker, 32 clients", lambda: scenario_b(visiond, images, scale, refs, big)),
                 ("c", "c. timeout_ms=1 behind slow jobs", lambda: scenario_c(visiond, images, scale, big)),
                 ("d", "d. SIGTERM during a burst", lambda: scenario_d(visiond, images, scale, refs, sanitizer, big)),
                 ("e", "e. clients leaving mid-upload/queued/running",
                  lambda: scenario_e(visiond, images, scale, refs, big)))
    for key, name, fn in scenarios:
        if key != "a" and key not in args.only:
            continue
        before = len(failures)
        try:
            r = fn()
        except Exception as e:  # e.g. a daemon that died: refused connections, missing log lines
            check(False, f"{key}: {type(e).__name__}: {e}")
            r = row(name, [], "aborted")
        r["failed"] = len(failures) - before
        rows.append(r)

    print("\n| scenario | requests | 200 | 503 | 504 | other | p50 ms | max ms | result | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['n']} | {r['s200']} | {r['s503']} | {r['s504']} | {r['other']} | "
              f"{r['p50']:.0f} | {r['max']:.0f} | {'ok' if not r['failed'] else 'FAIL'} | {r['note']} |")
    shown = " (the first 30 shown)" if len(failures) > 30 else ""
    print(f"\n{len(failures)} failures{shown}, {time.monotonic() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
