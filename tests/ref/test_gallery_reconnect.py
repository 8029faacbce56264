#!/usr/bin/python3
"""A gallery database that comes up after the daemon (docker compose starting both at once), on a
throwaway PostgreSQL 15 cluster (tests/ref/pgcluster.py; never a mock).

  down       the daemon starts while the database is stopped: it serves, and the gallery routes (REST,
             identify, DeepStack's list) answer 503 GALLERY_UNAVAILABLE with Retry-After and a message
             saying why; /v1/detect and /healthz are not affected
  back-off   a burst of gallery requests while it is down makes a few connection attempts, not one each
  up         the database starts while 4 clients poll: without a reload or restart, the gallery routes
             work within the back-off's longest wait (10 s): a subject is enrolled and identified, and the
             log says the database was reached
  permanent  a failure that cannot pass by waiting (a gallery of another recognition model) is not
             retried: 503 NOT_READY with its reason, and no attempt is logged; found once the database
             comes up, it ends the attempts the same way

usage: test_gallery_reconnect.py --visiond build/visiond
Exit 0 if all pass, 1 on any failure, 77 (skipped) without PostgreSQL 15 or the face models.
"""
import argparse
import pathlib
import random
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402
import pgcluster  # noqa: E402

ATTEMPT = "gallery not available (attempt"


def unavailable(c, group, r, what):
    body = r.json() if r.body else {}
    err = body.get("error", {}) if isinstance(body, dict) else {}
    c.check(group, r.status == 503 and err.get("code") == "GALLERY_UNAVAILABLE" and r.header("Retry-After")
            and "unreachable" in err.get("message", ""), f"{what}: 503 GALLERY_UNAVAILABLE, Retry-After, why",
            repr(r))


def test_down_then_up(c, visiond, pg, rng):
    uri = pg.create_db("reconnect")
    pg.stop("fast")
    with daemon.Daemon(visiond, "--gallery", uri, workers=1) as d:
        c.check("down", d.get("/healthz").status == 200, "the daemon serves with the database down")
        dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
        r = d.post_raw("/v1/detect", dog, "image/jpeg")
        c.check("down", r.status == 200, "/v1/detect is not affected", repr(r))
        emb = [rng.gauss(0, 0.1) for _ in range(128)]
        unavailable(c, "down", d.get("/v1/subjects"), "GET /v1/subjects")
        unavailable(c, "down", d.get("/v1/gallery"), "GET /v1/gallery")
        unavailable(c, "down", d.post_json("/v1/subjects", {"name": "ann"}), "POST /v1/subjects")
        unavailable(c, "down", d.post_json("/v1/identify", {"embedding": emb}), "POST /v1/identify")
        r = d.post_multipart("/v1/vision/face/list", [])
        c.check("down", r.status == 503, "DeepStack's face list: 503", repr(r))

        # back-off: 40 requests over ~2 s make a handful of attempts (0.5 s, then 1 s, 2 s, ...)
        t0 = time.monotonic()
        for _ in range(40):
            d.get("/v1/subjects")
            time.sleep(0.05)
        took = time.monotonic() - t0
        attempts = d.stderr().count(ATTEMPT)
        c.check("back-off", 1 <= attempts <= 4, f"40 requests in {took:.1f} s: 1 to 4 connection attempts",
                f"{attempts} attempts")

        pg.start()
        t_up = time.monotonic()
        statuses = []

        def poll():  # several clients at once: one attempt runs, the others answer 503 meanwhile
            while time.monotonic() - t_up < 25:
                st = d.get("/v1/subjects").status
                statuses.append(st)
                if st == 200:
                    return
                time.sleep(0.02)

        pollers = [threading.Thread(target=poll) for _ in range(4)]
        for t in pollers:
            t.start()
        for t in pollers:
            t.join()
        waited = time.monotonic() - t_up
        r = d.get("/v1/gallery")
        c.check("up", set(statuses) <= {200, 503}, "4 clients polling meanwhile: 503s, then 200s",
                repr(sorted(set(statuses))))
        c.check("up", r is not None and r.status == 200 and r.json()["backend"] == "postgres",
                "the gallery works once the database is up, without a reload", repr(r))
        c.check("up", waited <= 12, "within the back-off's longest wait (10 s) and the attempt",
                f"{waited:.1f} s")
        print(f"database up: the gallery answered 200 after {waited:.1f} s "
              f"({d.stderr().count(ATTEMPT)} failed attempts before)")
        if r is not None and r.status == 200:
            fp = r.json()["model_fingerprint"]
            r = d.post_json("/v1/subjects", {"name": "ann"})
            c.check("up", r.status == 201, "POST /v1/subjects: 201", repr(r))
            r = d.post_json("/v1/subjects/ann/faces", {"embeddings": [emb], "model_fingerprint": fp})
            c.check("up", r.status == 201, "an embedding enrolled", repr(r))
            r = d.post_json("/v1/identify", {"embedding": emb, "top_k": 1})
            m = r.json()["faces"][0]["match"] if r.status == 200 else None
            c.check("up", m is not None and m["subject"] == "ann", "and identified", repr(r))
            c.check("up", pg.psql("reconnect", "SELECT count(*) FROM faces") == "1",
                    "the face is in the database")
        c.check("up", "its database reached at last" in d.stderr(), "the log says the database was reached")
        code, log = d.stop()
        c.check("daemon", code == 0 and not daemon.sanitizer_report(log), "exits cleanly",
                daemon.sanitizer_report(log))


def test_permanent(c, visiond, pg):
    uri = pg.create_db("othermodel")
    with daemon.Daemon(visiond, "--gallery", uri, workers=1) as d:
        c.check("permanent", d.get("/v1/gallery").status == 200, "a fresh gallery opens")
    # A gallery of another recognition model: its fingerprint and one face of it.
    pg.psql("othermodel", "UPDATE gal_state SET fingerprint = repeat('b', 64)")
    pg.psql("othermodel", "INSERT INTO subjects (name, created_ms) VALUES ('x', 0)")
    pg.psql("othermodel", "INSERT INTO faces (subject_id, fingerprint, embedding, det_score, x_min, y_min, x_max, "
            "y_max, created_ms) SELECT id, repeat('b', 64), decode(repeat('00', 512), 'hex'), 0, 0, 0, 0, 0, 0 "
            "FROM subjects WHERE name = 'x'")
    with daemon.Daemon(visiond, "--gallery", uri, workers=1) as d:
        r1 = d.get("/v1/subjects")
        time.sleep(1.2)
        r2 = d.get("/v1/subjects")
        for r in (r1, r2):
            c.check("permanent", r.status == 503 and r.json()["error"]["code"] == "NOT_READY", "503 NOT_READY",
                    repr(r))
        c.check("permanent", "model" in r2.json()["error"]["message"], "the reason names the model",
                r2.json()["error"]["message"])
        c.check("permanent", ATTEMPT not in d.stderr(), "not retried", d.stderr()[-800:])
    # The same found only once the database is back: tried until it answers, then no more.
    pg.stop("fast")
    with daemon.Daemon(visiond, "--gallery", uri, workers=1) as d:
        unavailable(c, "permanent", d.get("/v1/subjects"), "database down")
        pg.start()
        t0 = time.monotonic()
        r = d.get("/v1/subjects")
        while r.status == 503 and r.json()["error"]["code"] == "GALLERY_UNAVAILABLE" and time.monotonic() - t0 < 15:
            time.sleep(0.1)
            r = d.get("/v1/subjects")
        c.check("permanent", r.status == 503 and r.json()["error"]["code"] == "NOT_READY"
                and "model" in r.json()["error"]["message"], "once it is back: 503 NOT_READY naming the model",
                repr(r))
        t1 = time.monotonic()
        while "not tried again" not in d.stderr() and time.monotonic() - t1 < 5:  # the log is read by a thread
            time.sleep(0.05)
        tries = d.stderr().count(ATTEMPT)
        time.sleep(1.5)
        for _ in range(5):
            d.get("/v1/subjects")
        c.check("permanent", d.stderr().count(ATTEMPT) == tries and "not tried again" in d.stderr(),
                "and not tried again", f"{tries} then {d.stderr().count(ATTEMPT)} attempts")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (daemon.ROOT / "models" / "faces").is_dir():
        print("skipped: face models missing")
        return 77
    try:
        pg = pgcluster.Cluster(port=55437)
    except pgcluster.Unavailable as e:
        print(f"skipped: {e}")
        return 77
    c = daemon.Checks()
    rng = random.Random(17)
    try:
        test_down_then_up(c, args.visiond, pg, rng)
        test_permanent(c, args.visiond, pg)
    finally:
        pg.close()
    return c.summary("test_gallery_reconnect")


if __name__ == "__main__":
    sys.exit(main())
