#!/usr/bin/python3
"""Socket activation and readiness notification of `visiond serve` (issue 7), the way systemd does them:
the listening socket arrives as fd 3 with LISTEN_FDS/LISTEN_PID, and the daemon reports READY=1,
RELOADING=1, STOPPING=1 to the AF_UNIX datagram socket named by NOTIFY_SOCKET (bound here by the test).

  a. systemd-socket-activate (Debian's systemd package) listens and starts the daemon on the first
     connection: 6 clients that connect before the daemon has loaded its models wait in the backlog and
     all get their answers (/healthz, /readyz, /v1/detect with the right detections); the log says
     "socket activation" and names the socket's port; READY=1 arrives once it serves.
  b. SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1. SIGTERM: STOPPING=1, exit 0.
  c. Restart without losing a connection: the test holds the socket itself and passes it to one daemon,
     then (SIGTERM) to a second one, while 3 clients keep connecting. No connection is refused or reset;
     requests that were sent before the second daemon was ready get 200 from it.
  d. Misuse fails clearly at start (exit 2): two sockets, and a socket on 0.0.0.0 without API keys (the
     loopback-or-keys rule checks the socket's real address, not the bind setting).

usage: test_socket_activation.py --visiond build/visiond    (run from the project root)
Exit 0 if all pass, 1 on any failure (also without systemd-socket-activate), 77 if the models are missing.
"""
import argparse
import http.client
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

ROOT = daemon.ROOT
DOG = daemon.SHARED / "images" / "dog.jpg"
MODEL = "yolo-fastest-1.1-xl"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def sanitizer_of(binary):
    data = pathlib.Path(binary).read_bytes()
    return "tsan" if b"__tsan_init" in data else "asan" if b"__asan_init" in data else ""


class Notify:
    """The service manager's side of sd_notify: an AF_UNIX datagram socket; messages with arrival times."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages, self.lock, self.stop = [], threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, field, after=0, timeout=60.0):
        """Index of the first message from index `after` on with the line `field`, or -1."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            with self.lock:
                for i in range(after, len(self.messages)):
                    if field in self.messages[i][1].split("\n"):
                        return i
            time.sleep(0.02)
        return -1

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def http_get(port, path, timeout=60.0, body=None, ctype=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        conn.request("POST" if body else "GET", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sanitizer_env():
    return {k: v for k, v in os.environ.items() if k.startswith(("TSAN_", "ASAN_", "UBSAN_", "LSAN_"))}


def serve_args(visiond, conf):
    return [str(pathlib.Path(visiond).resolve()), "serve", "--config", str(conf), "--models", "models",
            "--workers", "1"]


def activate(visiond, conf, listen, notify):
    """systemd-socket-activate -l ADDR... visiond serve: it listens, and starts the daemon in its own
    process (same pid) on the first connection. Only the -E variables reach the daemon."""
    argv = ["systemd-socket-activate"] + [f"--listen={a}" for a in listen]
    argv += [f"--setenv={k}={v}" for k, v in {"NOTIFY_SOCKET": notify.path, **sanitizer_env()}.items()]
    return subprocess.Popen(argv + serve_args(visiond, conf), cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_activation(visiond, conf, notify, scale):
    """(a) and (b)."""
    port = free_port()
    proc = activate(visiond, conf, [f"127.0.0.1:{port}"], notify)
    time.sleep(0.3)  # systemd-socket-activate is listening (it binds before anything else)
    jpeg = DOG.read_bytes()
    results = {}

    def client(k):
        try:
            if k < 2:
                results[k] = http_get(port, "/healthz" if k == 0 else "/readyz", 60 * scale)
            else:
                results[k] = http_get(port, "/v1/detect", 60 * scale, jpeg, "image/jpeg")
        except OSError as e:
            results[k] = (None, repr(e).encode())

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ready = notify.wait_for("READY=1", 0, 60 * scale)
    check(ready >= 0, "(a) READY=1 sent to NOTIFY_SOCKET")
    check(results.get(0, (None,))[0] == 200 and results.get(1, (None,))[0] == 200,
          f"(a) /healthz and /readyz sent before the daemon started: {results.get(0)} {results.get(1)}")
    detects = [results.get(k, (None, b""))for k in range(2, 6)]
    check(all(s == 200 and b'"label":"dog"' in b for s, b in detects),
          f"(a) 4 detects sent before the daemon started: all 200 with the dog ({[s for s, _ in detects]})")
    if ready >= 0:
        check(notify.messages[ready][0] > t0, "(a) READY=1 came after the first connection started the daemon")
    status, _ = http_get(port, "/readyz")
    check(status == 200, f"(a) /readyz 200 after READY=1 ({status})")

    n = len(notify.messages)
    proc.send_signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING=1", n, 60 * scale)
    check(reloading >= 0 and any(line.startswith("MONOTONIC_USEC=")
                                 for line in notify.messages[reloading][1].split("\n")),
          "(b) SIGHUP: RELOADING=1 with MONOTONIC_USEC")
    check(notify.wait_for("READY=1", max(reloading, n), 60 * scale) > reloading, "(b) then READY=1")
    n = len(notify.messages)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(60 * scale)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    check(notify.wait_for("STOPPING=1", n, 5) >= 0, "(b) SIGTERM: STOPPING=1")
    log = proc.stderr.read().decode()
    proc.stderr.close()
    check(code == 0, f"(b) exit status 0 ({code})")
    check(f"listening on 127.0.0.1:{port} (socket activation)" in log,
          "(a) the log names the socket's address and socket activation")
    report = daemon.sanitizer_report(log)
    check(not report, "(a) no sanitizer report" + (":\n" + report if report else ""))


def launch_with_socket(visiond, conf, sock, notify):
    """Starts the daemon with `sock` as its fd 3, LISTEN_FDS=1 and LISTEN_PID = its pid (a shell that
    execs it keeps the pid), as systemd does on each (re)start of the service."""
    fd = sock.fileno()
    script = 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@" 3<&' + str(fd) + (f" {fd}<&-" if fd != 3 else "")
    env = {"NOTIFY_SOCKET": notify.path, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **sanitizer_env()}
    return subprocess.Popen(["/bin/sh", "-c", script, "sh"] + serve_args(visiond, conf), cwd=ROOT, env=env,
                            pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_restart(visiond, conf, notify, scale):
    """(c) The socket outlives the daemon: connections during a restart wait in the backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    jpeg = DOG.read_bytes()
    logs = []

    def start():
        n = len(notify.messages)
        p = launch_with_socket(visiond, conf, sock, notify)
        logs.append(p)
        return p, notify.wait_for("READY=1", n, 60 * scale)

    first, ready = start()
    check(ready >= 0, "(c) first daemon READY=1")
    results, lock, stop = [], threading.Lock(), threading.Event()

    def client():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                status, body = http_get(port, "/v1/detect", 60 * scale, jpeg, "image/jpeg")
            except OSError as e:
                status, body = None, repr(e).encode()
            with lock:
                results.append((t0, time.monotonic(), status, body))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5 * scale)
    first.send_signal(signal.SIGTERM)
    first.wait(60 * scale)
    gone = time.monotonic()
    second, ready = start()
    check(ready >= 0, "(c) second daemon READY=1")
    second_ready = notify.messages[ready][0] if ready >= 0 else 0.0
    time.sleep(0.5 * scale)
    stop.set()
    for t in threads:
        t.join()
    second.send_signal(signal.SIGTERM)
    second.wait(60 * scale)
    sock.close()
    errors = [r for r in results if r[2] is None]
    check(not errors, f"(c) {len(results)} requests across the restart, no connection refused or reset "
                      f"({[r[3][:80] for r in errors[:3]]})")
    # Answers during the first daemon's drain may be 503 NOT_READY; none other than 200 after it left.
    other = [r for r in results if r[2] not in (200, 503) or (r[2] == 503 and r[0] > gone)]
    check(not other, f"(c) every answer 200 (or 503 while the first drained): {[r[2] for r in other[:5]]}")
    # Sent before the second daemon was ready, answered after: they waited in the socket's backlog.
    waited = [r for r in results if r[0] < second_ready < r[1] and r[2] == 200 and b'"label":"dog"' in r[3]]
    check(len(waited) >= 1, f"(c) {len(waited)} requests waited in the backlog while no daemon ran and got "
                            "200 from the second")
    for p in logs:
        log = p.stderr.read().decode()
        p.stderr.close()
        check(p.returncode == 0 and "socket activation" in log, f"(c) daemon exit {p.returncode}, socket adopted")
        report = daemon.sanitizer_report(log)
        check(not report, "(c) no sanitizer report" + (":\n" + report if report else ""))


def test_misuse(visiond, conf, notify, scale):
    """(d) Bad socket set-ups stop the daemon at start, with the reason."""
    p1, p2 = free_port(), free_port()
    cases = [([f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"], "2 sockets passed"),
             ([f"0.0.0.0:{p1}"], "refusing to listen on 0.0.0.0 without API keys")]
    for listen, expect in cases:
        proc = activate(visiond, conf, listen, notify)
        time.sleep(0.3)
        try:
            with socket.create_connection(("127.0.0.1", p1), timeout=5):
                pass  # the first connection starts the daemon
        except OSError:
            pass
        try:
            code = proc.wait(60 * scale)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log = proc.stderr.read().decode()
        proc.stderr.close()
        check(code == 2 and expect in log, f"(d) {' '.join(listen)}: exit {code}, says '{expect}'")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not shutil.which("systemd-socket-activate"):
        print("FAIL: systemd-socket-activate not installed (Debian package systemd; scripts/install-deps)")
        return 1
    if not (ROOT / "models" / MODEL).is_dir() or not DOG.exists():
        print("SKIP: models or photos missing (scripts/fetch-models)")
        return 77
    scale = {"tsan": 10, "asan": 3}.get(sanitizer_of(args.visiond), 1)
    with tempfile.TemporaryDirectory(prefix="visiond-sd-") as tmp:
        conf = pathlib.Path(tmp) / "visiond.conf"
        conf.write_text("access_log = no\n")
        notify = Notify(pathlib.Path(tmp) / "notify")
        try:
            test_activation(args.visiond, conf, notify, scale)
            test_restart(args.visiond, conf, notify, scale)
            test_misuse(args.visiond, conf, notify, scale)
        finally:
            notify.close()
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
