"""Scale-out: three `visiond serve` replicas behind nginx with the project's docker/nginx.conf.

    /usr/bin/python3 tests/ref/test_scale_out.py --visiond build/visiond [--requests 1000] [--concurrency 8]

Starts three replicas on free ports of 127.0.0.1 (tests/ref/daemon.py, one worker on one core each, a
300 s deadline) and Debian's nginx as a foreground process with its own prefix (pid, temp files, logs) in
a temp directory, running docker/nginx.conf with only its upstream `server` lines and `listen` port replaced.
Sends --requests POST /v1/detect (a 320x240 copy of ../shared/images/dog.jpg, each with its own
X-Request-Id) through nginx from --concurrency clients, and SIGTERMs the second replica once a third of
them are answered.

Passes when every request was answered 200 with the dog found, every replica served some (counted from
each replica's access log by request id, and from nginx's log by upstream address: the two must agree),
no request id was answered by two replicas, and the stopped replica drained and exited 0. Prints a table
per replica. Exit 77 (skip) without nginx (scripts/install-deps installs it). Measured on 2 cores shared
with other jobs: 31 to 125 s in Release; an ASan build sends 300 requests (3.3 to 9 min, load 11 to 22).
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

NGINX_CONF = daemon.ROOT / "docker" / "nginx.conf"
PHOTO = daemon.SHARED / "images" / "dog.jpg"
SERVER_RE = re.compile(r"^(\s*)server\s+visiond:8080(\s+[^;]*)?;\s*$", re.M)
LISTEN_RE = re.compile(r"^(\s*)listen\s+8080;\s*$", re.M)
NGINX_LINE_RE = re.compile(r'"POST /v1/detect[^"]*" (\d+) .*upstream=(\S.*?) upstream_status=')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_conf(ports, listen_port):
    """docker/nginx.conf with its upstream server line repeated for each port (same parameters) and
    nginx listening on 127.0.0.1:listen_port. Raises if the file no longer has those lines."""
    text = NGINX_CONF.read_text()
    if len(SERVER_RE.findall(text)) != 1 or len(LISTEN_RE.findall(text)) != 1:
        raise RuntimeError(f"{NGINX_CONF}: expected one 'server visiond:8080 ...;' and one 'listen 8080;'")
    text = SERVER_RE.sub(lambda m: "\n".join(f"{m.group(1)}server 127.0.0.1:{p}{m.group(2) or ''};"
                                             for p in ports), text)
    return LISTEN_RE.sub(lambda m: f"{m.group(1)}listen 127.0.0.1:{listen_port};", text)


class Nginx:
    """nginx in the foreground with everything of its own under `prefix`."""

    def __init__(self, nginx, prefix, conf_text, port):
        self.prefix = pathlib.Path(prefix)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(conf_text)
        self.access = open(self.prefix / "access.log", "wb")
        self.errors = open(self.prefix / "error.log", "wb")
        self.proc = subprocess.Popen([nginx, "-p", str(self.prefix), "-c", str(self.conf), "-e", "stderr",
                                      "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=self.access,
                                     stderr=self.errors)
        until = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > until:
                    self.stop()
                    raise RuntimeError(f"nginx did not start: {self.error_text()}")
                time.sleep(0.05)

    def error_text(self):
        return (self.prefix / "error.log").read_text(errors="replace")

    def access_lines(self):
        return (self.prefix / "access.log").read_text(errors="replace").splitlines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.access.close()
        self.errors.close()


def small_jpeg():
    """dog.jpg at 320x240, as JPEG bytes: a small request that still shows the dog."""
    import cv2
    img = cv2.imread(str(PHOTO))
    ok, buf = cv2.imencode(".jpg", cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def send(port, body, rid):
    """One POST /v1/detect through nginx: (request id, status, answered id, found a dog, error text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/detect", body=body,
                     headers={"Content-Type": "image/jpeg", "X-Request-Id": rid})
        resp = conn.getresponse()
        data = resp.read()
        dog = False
        if resp.status == 200:
            dog = any(d["label"] == "dog" for d in json.loads(data)["detections"])
        return rid, resp.status, resp.headers.get("X-Request-Id"), dog, "" if resp.status == 200 else data[:200]
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        return rid, 0, None, False, repr(e)
    finally:
        conn.close()


def served_ids(replica):
    """{request id: status} of the /v1/detect requests in a replica's access log."""
    return {r["request_id"]: r["status"] for r in replica.log_records()
            if r.get("route") == "detect" and "request_id" in r}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--requests", type=int, help="default 1000; 300 for a sanitizer build")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not nginx:
        print("skip: nginx not installed (scripts/install-deps installs Debian's nginx)")
        return 77
    if not PHOTO.exists():
        print(f"skip: {PHOTO} not found")
        return 77
    if args.requests is None:
        # ASan/TSan run the model ~10x slower; the routing is the same, so fewer requests suffice there.
        sanitized = any(s in pathlib.Path(args.visiond).read_bytes() for s in (b"__asan_init", b"__tsan_init"))
        args.requests = 300 if sanitized else 1000
    checks = daemon.Checks()
    body = small_jpeg()
    # A deadline far beyond the run: on a loaded machine (sanitizers, parallel tests) a queued request must
    # not turn into a 504, which would be the daemon's answer, not nginx's.
    # One worker on one core each, as docker/compose.yaml runs them.
    replicas = [daemon.Daemon(args.visiond, "--timeout-ms", "300000", "--threads", "1", workers=1)
                for _ in range(3)]
    ports = [r.port for r in replicas]
    listen = free_port()
    tmp = tempfile.mkdtemp(prefix="visiond-scale-")
    os.chmod(tmp, 0o755)  # nginx's workers drop root (to nobody) and keep request bodies under it
    proxy = None
    try:
        for r in replicas:
            r.wait_ready()
        proxy = Nginx(nginx, tmp, nginx_conf(ports, listen), listen)
        results = []
        victim = replicas[1]
        stop_after = args.requests // 3
        stopped = {}

        def stop_victim():
            stopped["at"] = len(results)
            stopped["code"], _ = victim.stop()
            stopped["done"] = len(results)

        stopper = threading.Thread(target=stop_victim)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            futures = [pool.submit(send, listen, body, f"scale-{i:06d}") for i in range(args.requests)]
            for f in concurrent.futures.as_completed(futures):
                results.append(f.result())
                if len(results) == stop_after:
                    stopper.start()
        elapsed = time.monotonic() - t0
        stopper.join()
        proxy.stop()
        for r in replicas:
            r.stop()

        bad = [r for r in results if r[1] != 200]
        if bad:
            print("nginx's error log:\n" + proxy.error_text()[-3000:])
        checks.check("requests", not bad, f"all {len(results)} answered 200 through nginx",
                     f"{len(bad)} failed, e.g. {bad[:3]}")
        checks.check("requests", all(r[2] == r[0] for r in results if r[1] == 200), "each answer carries its X-Request-Id")
        nodog = [r[0] for r in results if r[1] == 200 and not r[3]]
        checks.check("requests", not nodog, "every answer found the dog", f"{len(nodog)} without, e.g. {nodog[:3]}")

        # Who served what: the replicas' access logs by request id, nginx's log by upstream address.
        served = [served_ids(r) for r in replicas]
        ok_ids = [{rid for rid, st in s.items() if st == 200} for s in served]
        wanted = {r[0] for r in results}
        for i, ids in enumerate(ok_ids):
            checks.check("replicas", len(ids & wanted) > 0, f"replica {i} (port {ports[i]}) served some requests")
        twice = (ok_ids[0] & ok_ids[1]) | (ok_ids[0] & ok_ids[2]) | (ok_ids[1] & ok_ids[2])
        checks.check("replicas", not twice, "no request id answered 200 by two replicas", f"{sorted(twice)[:5]}")
        checks.check("replicas", set.union(*ok_ids) >= wanted, "every request id is in a replica's log with 200",
                     f"missing {sorted(wanted - set.union(*ok_ids))[:5]}")
        final = {p: 0 for p in ports}
        retried = 0
        for line in proxy.access_lines():
            m = NGINX_LINE_RE.search(line)
            if not m:
                continue
            addrs = [a.strip() for a in m.group(2).split(",")]
            retried += len(addrs) > 1
            last = addrs[-1].rsplit(":", 1)[-1]
            if m.group(1) == "200" and last.isdigit() and int(last) in final:
                final[int(last)] += 1
        for i, p in enumerate(ports):
            checks.check("replicas", final[p] == len(ok_ids[i] & wanted),
                         f"replica {i}: nginx's count ({final[p]}) equals its own log's ({len(ok_ids[i] & wanted)})")
        checks.check("stop", stopped.get("code") == 0, "the stopped replica drained and exited 0",
                     f"exit {stopped.get('code')}")
        for i, r in enumerate(replicas):
            report = daemon.sanitizer_report(r.stderr())
            checks.check("replicas", not report, f"replica {i}: no sanitizer report", report)

        print(f"{len(results)} requests, concurrency {args.concurrency}, {elapsed:.1f} s "
              f"({len(results) / elapsed:.0f}/s); replica 1 SIGTERMed after {stopped.get('at')} answers "
              f"(it exited after {stopped.get('done')}); nginx retried {retried} requests on another replica")
        print(f"{'replica':<8} {'port':>6} {'served 200':>10} {'other':>6}  state")
        for i, r in enumerate(replicas):
            other = sum(1 for rid, st in served[i].items() if st != 200 and rid in wanted)
            state = f"SIGTERM mid-run, exit {stopped.get('code')}" if r is victim else f"ran to the end, exit {r.returncode}"
            print(f"{i:<8} {ports[i]:>6} {len(ok_ids[i] & wanted):>10} {other:>6}  {state}")
        print(f"{'total':<8} {'':>6} {sum(len(s & wanted) for s in ok_ids):>10}   failed requests: {len(bad)}")
    finally:
        if proxy:
            proxy.stop()
        for r in replicas:
            if r.alive():
                r.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return checks.summary("test_scale_out")


if __name__ == "__main__":
    sys.exit(main())
