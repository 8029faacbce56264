#!/usr/bin/python3
"""Connection limits of `visiond serve` (issue 6): read_timeout_ms, idle_timeout_s, max_connections,
max_connections_per_ip.

  a. slow-loris: 6 clients dribble a request's headers (one byte every 200 ms), 2 more its body; each is
     cut off by the daemon, not before read_timeout_ms (1500), while /healthz and POST /v1/detect keep answering
     200 on other connections meanwhile;
  b. the read clock restarts after each answer: one kept-alive connection sends 4 requests 1 s apart
     (4 s in all, over the 1.5 s limit), and every one is answered;
  c. the clock stops once the request is in: with one worker, 24 concurrent detects wait in the queue
     longer than read_timeout_ms, and every one is answered 200;
  d. idle_timeout_s: a connection that sends nothing is closed by the daemon, not before 1 s (idle_timeout_s 1);
  e. max_connections 4: with 4 connections open, a 5th is not answered (it waits in the listen backlog);
     once one of the 4 closes, it is served;
  f. max_connections_per_ip 2: with 2 connections open from 127.0.0.1, a 3rd is closed without an
     answer; once one closes, a new connection is served.
Every daemon must then exit 0 on SIGTERM with nothing unfinished and no sanitizer report.

usage: test_http_limits.py --visiond build/visiond     (run from the project root; exit 77 = skipped)
"""
import argparse
import pathlib
import socket
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

READ_TIMEOUT_MS = 1500
QUEUED_READ_TIMEOUT_MS = 1000  # the queued-requests daemon's read deadline
DRIBBLE_S = 10.0  # how long a slow-loris client dribbles before it gives up itself


def connect(d):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_peer(s, wait):
    """True if the server closes `s` (EOF or reset) within `wait` seconds without sending an answer
    first; False if it is still open; the answer's first bytes (bytes) if it answered."""
    s.settimeout(wait)
    try:
        data = s.recv(4096)
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    return True if not data else data


def dribble(d, head, body_len, result, step=0.2, max_s=DRIBBLE_S):
    """Sends `head` (and then a body of body_len bytes) one byte every `step` s until the server closes
    the connection; stores the seconds from connect to the close (None if it never closed)."""
    start = time.monotonic()
    s = connect(d)
    data = head + b"x" * body_len
    try:
        for i in range(len(data)):
            if time.monotonic() - start > max_s:
                break
            s.sendall(data[i:i + 1])
            got = closed_by_peer(s, step)
            if got is not False:
                result.append((time.monotonic() - start, got))
                return
        result.append((None, b""))
    except (BrokenPipeError, ConnectionResetError):
        result.append((time.monotonic() - start, True))
    finally:
        s.close()


def slow_loris(c, d, dog):
    head = (b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            b"X-Padding: " + b"a" * 200 + b"\r\n")
    body_head = (b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: 5000\r\n\r\n")
    results = [[] for _ in range(8)]
    threads = [threading.Thread(target=dribble, args=(d, head, 0, results[i])) for i in range(6)]
    threads += [threading.Thread(target=dribble, args=(d, body_head, 5000, results[i]))
                for i in range(6, 8)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    served = []
    while any(t.is_alive() for t in threads):
        r1 = d.get("/healthz", timeout=10)
        r2 = d.post_raw("/v1/detect", dog, "image/jpeg", timeout=10)
        served.append((r1.status, r2.status))
    for t in threads:
        t.join()
    c.check("slow-loris", served and all(s == (200, 200) for s in served),
            "other clients answered 200 while 8 slow clients were connected", str(served))
    for i, res in enumerate(results):
        what = "headers" if i < 6 else "body"
        cut, got = res[0]
        c.check("slow-loris", got is True, f"client {i} ({what} dribbled) closed without an answer",
                repr(got)[:200])
        # Not before the deadline; after it, by the daemon and not by our client giving up (DRIBBLE_S,
        # over 6 x the deadline): how soon after the deadline depends on the machine's load.
        c.check("slow-loris", cut is not None and READ_TIMEOUT_MS / 1000 - 0.2 <= cut < DRIBBLE_S,
                f"client {i} ({what} dribbled) cut off by the daemon after read_timeout_ms", f"after {cut}")
    metrics = d.get("/metrics").body.decode()
    c.check("slow-loris", "visiond_read_timeouts_total 8\n" in metrics,
            "/metrics counts the 8 connections cut (visiond_read_timeouts_total 8)",
            [line for line in metrics.splitlines() if "read_timeouts" in line])
    print(f"slow-loris: cut after {', '.join(f'{r[0][0]:.2f}' for r in results if r[0][0])} s; "
          f"{len(served)} pairs of other requests answered meanwhile", flush=True)


def http_answer(s):
    """Reads one HTTP answer with a Content-Length body from `s`; returns its status line."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {buf[:100]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        rest += chunk
    return head.split(b"\r\n")[0].decode()


def keep_alive_clock_restarts(c, d):
    s = connect(d)
    statuses = []
    try:
        for _ in range(4):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            statuses.append(http_answer(s))
            time.sleep(1.0)
    except (ConnectionError, OSError) as e:
        statuses.append(repr(e))
    finally:
        s.close()
    c.check("keep-alive", statuses == ["HTTP/1.1 200 OK"] * 4,
            "4 requests 1 s apart on one connection (4 s > read_timeout_ms) all answered", str(statuses))


def queued_requests_not_cut(c, d, dog):
    # Enough requests that the last one queues well past the read deadline on any machine: the
    # count follows from one request's time here, never fewer than 24. The fastest of three: a fresh
    # daemon's first detect is several times slower (cold caches, first touch of the workspace), and
    # calibrating on it once gave 32 requests that all finished within 0.65 s, under the deadline.
    single = 1e9
    for _ in range(3):
        t0 = time.monotonic()
        d.post_raw("/v1/detect", dog, "image/jpeg", timeout=600)
        single = max(min(single, time.monotonic() - t0), 1e-3)
    n = min(max(24, int(2.5 * QUEUED_READ_TIMEOUT_MS / 1000 / single) + 1), 400)
    out = [None] * n
    barrier = threading.Barrier(len(out))

    def client(i):
        barrier.wait()
        t0 = time.monotonic()
        try:
            r = d.post_raw("/v1/detect", dog, "image/jpeg", timeout=600)
            out[i] = (r.status, time.monotonic() - t0)
        except OSError as e:
            out[i] = (repr(e), time.monotonic() - t0)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(out))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slowest = max(x[1] for x in out)
    c.check("queued", all(x[0] == 200 for x in out), f"{n} concurrent detects on 1 worker all answered 200",
            str(sorted({str(x[0]) for x in out})))
    c.check("queued", slowest > QUEUED_READ_TIMEOUT_MS / 1000, "the slowest waited longer than "
            "read_timeout_ms (so the clock really stopped once its request was in)",
            f"slowest {slowest:.2f} s, {n} requests of {single * 1000:.0f} ms alone")
    print(f"queued: {n} detects on 1 worker ({single * 1000:.0f} ms alone), slowest answered after "
          f"{slowest:.2f} s", flush=True)


def idle_cut(c, d):
    s = connect(d)
    t0 = time.monotonic()
    got = closed_by_peer(s, 10)
    took = time.monotonic() - t0
    s.close()
    # Not before idle_timeout_s; after it, by the daemon (closed_by_peer waits 10 s for that), however
    # loaded the machine is.
    c.check("idle", got is True and 0.9 <= took, "a silent connection closed by the daemon, not before "
            "idle_timeout_s (1)", f"{got!r} after {took:.2f} s")
    print(f"idle: silent connection closed after {took:.2f} s", flush=True)


def hold(d, cap):
    held = [connect(d) for _ in range(cap)]
    for s in held:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # a request begun and not finished: the slot is taken
    time.sleep(0.3)
    return held


def max_connections_waits(c, d, cap):
    """MHD stops accepting at the limit: a further connection waits in the listen backlog, unanswered,
    until a slot frees, and is then served."""
    held = hold(d, cap)
    extra = connect(d)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = closed_by_peer(extra, 1.5)
    c.check("max_connections", got is False, f"with {cap} connections open a {cap + 1}th gets no answer",
            repr(got)[:200])
    held.pop().close()
    extra.settimeout(10)
    try:
        status = http_answer(extra)
    except (ConnectionError, OSError) as e:
        status = repr(e)
    extra.close()
    c.check("max_connections", status == "HTTP/1.1 200 OK", "once one of them closes, it is served", status)
    for s in held:
        s.close()


def per_ip_cap(c, d, cap):
    """Over the per-address limit MHD closes the new connection at once."""
    held = hold(d, cap)
    extra = connect(d)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = closed_by_peer(extra, 5)
    extra.close()
    c.check("max_connections_per_ip", got is True,
            f"with {cap} connections open from 127.0.0.1 a {cap + 1}th is closed without an answer", repr(got)[:200])
    held.pop().close()
    time.sleep(0.3)
    r = d.get("/healthz", timeout=10)
    c.check("max_connections_per_ip", r.status == 200, "after one of them closed, a new connection is served",
            repr(r))
    for s in held:
        s.close()


def stopped(c, d, name):
    code, err = d.stop()
    c.check(name, code == 0, "the daemon exits 0 on SIGTERM", f"exit {code}: {err[-800:]}")
    c.check(name, "stopped (0 requests unfinished)" in err, "nothing left unfinished", err[-500:])
    report = daemon.sanitizer_report(err)
    c.check(name, not report, "no sanitizer report on stderr", report)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (daemon.ROOT / "models").is_dir() or not (daemon.SHARED / "images" / "dog.jpg").exists():
        print("SKIP: needs ./models (scripts/fetch-models) and ../shared/images")
        return 77
    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    c = daemon.Checks()
    visiond = pathlib.Path(args.visiond).resolve()
    with daemon.Daemon(visiond, "--read-timeout-ms", str(READ_TIMEOUT_MS), "--no-access-log") as d:
        slow_loris(c, d, dog)
        keep_alive_clock_restarts(c, d)
        stopped(c, d, "read_timeout_ms")
    with daemon.Daemon(visiond, "--read-timeout-ms", str(QUEUED_READ_TIMEOUT_MS), "--timeout-ms", "300000",
                       "--queue", "512", "--max-connections-per-ip", "0", "--no-access-log",
                       workers=1) as d:
        queued_requests_not_cut(c, d, dog)
        stopped(c, d, "queued")
    with daemon.Daemon(visiond, "--idle-timeout-s", "1", "--no-access-log") as d:
        idle_cut(c, d)
        stopped(c, d, "idle_timeout_s")
    with daemon.Daemon(visiond, "--max-connections", "4", "--no-access-log") as d:
        max_connections_waits(c, d, 4)
        stopped(c, d, "max_connections")
    with daemon.Daemon(visiond, "--max-connections-per-ip", "2", "--no-access-log") as d:
        per_ip_cap(c, d, 2)
        stopped(c, d, "max_connections_per_ip")
    return c.summary("test_http_limits")


if __name__ == "__main__":
    sys.exit(main())
