#!/usr/bin/python3
"""Durability of the gallery under kill -9 (issue 15, acceptance 3), SQLite backend, through the daemon.

20 rounds on one data directory: the daemon starts, 4 clients enrol in a loop (POST
/v1/vision/face/register, each request a new userid with one aligned chip, so every face is told apart
by its subject), and the daemon is killed with SIGKILL at a random moment (0.3-2 s in). After each
restart: every acknowledged enrolment (a 200 the client read) is there with exactly one face, no subject
has two faces (nothing applied twice, nothing half-written), and PRAGMA integrity_check on the gallery
file says ok. The seed is printed (--seed replays a run).

usage: test_gallery_durability.py --visiond build/visiond [--rounds 20] [--seed N]
Exit 0 if all pass, 1 on any failure, 77 (skipped) without the face models or the chips.
"""
import argparse
import pathlib
import random
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

JOHNS = daemon.SHARED / "faces" / "dlib_johns"
CLIENTS = 4


def subjects(d):
    """Every subject's face count, through GET /v1/subjects (paged)."""
    out, cursor = {}, ""
    while True:
        r = d.get("/v1/subjects?page_size=1000" + (f"&cursor={cursor}" if cursor else ""))
        doc = r.json()
        for s in doc["subjects"]:
            out[s["name"]] = s["face_count"]
        cursor = doc["next_cursor"]
        if not cursor:
            return out


def client(d, k, rnd, chips, acked, stop):
    i = 0
    while not stop.is_set():
        name = f"r{rnd}-c{k}-{i}"
        chip = chips[(k * 7 + i) % len(chips)]
        i += 1
        try:
            r = d.post_multipart("/v1/vision/face/register",
                                 [("userid", name), ("aligned", "true"),
                                  ("image", (chip.name, chip.read_bytes(), "image/jpeg"))], timeout=10)
        except OSError:
            return  # the daemon is gone: this request was not acknowledged
        if r.status == 200 and r.json().get("success") is True:
            acked.append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if not (daemon.ROOT / "models" / "faces").is_dir() or not JOHNS.is_dir():
        print("skipped: face models or ../shared/faces/dlib_johns missing")
        return 77
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    chips = sorted(JOHNS.glob("*/*.jpg"))
    c = daemon.Checks()
    acked_all = []
    with tempfile.TemporaryDirectory(prefix="visiond-gallery-durability-") as data:
        db = pathlib.Path(data) / "gallery.db"
        for rnd in range(args.rounds):
            d = daemon.Daemon(args.visiond, "--data-dir", data)
            acked, stop = [], threading.Event()
            threads = [threading.Thread(target=client, args=(d, k, rnd, chips, acked, stop)) for k in range(CLIENTS)]
            for t in threads:
                t.start()
            wait = rng.uniform(0.3, 2.0)
            time.sleep(wait)
            d.kill()
            stop.set()
            for t in threads:
                t.join(30)
            acked_all.extend(acked)
            with daemon.Daemon(args.visiond, "--data-dir", data) as d2:
                have = subjects(d2)
                missing = [n for n in acked_all if have.get(n) != 1]
                doubled = [n for n, f in have.items() if f != 1]
                c.check("durable", not missing, f"round {rnd}: every acknowledged enrolment is there once",
                        f"{len(missing)} not: {missing[:5]} -> {[have.get(n) for n in missing[:5]]}")
                c.check("durable", not doubled, f"round {rnd}: no subject with other than one face", repr(doubled[:5]))
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                ok = con.execute("PRAGMA integrity_check").fetchone()[0]
                con.close()
                c.check("durable", ok == "ok", f"round {rnd}: integrity_check", ok)
                print(f"round {rnd:2d}: killed after {wait:.2f} s, {len(acked)} enrolments acknowledged, "
                      f"{len(have)} subjects stored ({len(have) - len(acked_all)} unacknowledged ones kept)")
                code, err = d2.stop()
                c.check("daemon", code == 0 and not daemon.sanitizer_report(err), "clean exit after restart",
                        daemon.sanitizer_report(err))
    print(f"{len(acked_all)} acknowledged enrolments over {args.rounds} kill -9 rounds")
    c.check("durable", len(acked_all) > 0, "some enrolments were acknowledged")
    return c.summary("test_gallery_durability")


if __name__ == "__main__":
    sys.exit(main())
