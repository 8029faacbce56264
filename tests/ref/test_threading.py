#!/usr/bin/python3
"""The daemon's threading modes (config `threads` and `threading`, README "Threading") give the same answers.

For each mode -- throughput (each request on one thread, the reference), auto (a lone request splits its
layers over idle cores, concurrent ones share the cores), latency (every request split over `threads`,
with one worker) -- a daemon with --threads 2 answers POST /v1/detect for the six ../shared/images/*.jpg
on yolo-fastest-1.1 and -xl, first one at a time, then from 4 concurrent clients, and POST /v1/faces with
embeddings for a face-api sample photo. Every answer must be exactly the throughput mode's (detections
with their printed confidences and boxes, face boxes, landmarks and embeddings): a layer is cut into the
same tasks whatever the team, so the results are bit-identical. Each daemon exits 0 on SIGTERM with no
sanitizer report. Also: --print-config shows the two settings, and an unknown mode is fatal at start-up.

usage: test_threading.py --visiond build/visiond   (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 if the models or images are missing.
"""
import argparse
import pathlib
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

MODELS = ["yolo-fastest-1.1", "yolo-fastest-1.1-xl"]
FACE_PHOTO = daemon.ROOT / "models" / "faces" / "package" / "demo" / "sample1.jpg"
MODES = [("throughput", 2), ("auto", 2), ("latency", 1)]  # (mode, workers)


def detect_key(doc):
    return [(d["class_id"], d["confidence"], tuple(d["box"].values())) for d in doc["detections"]]


def faces_key(doc):
    return [(f["box"], f.get("landmarks"), f.get("embedding")) for f in doc["faces"]]


def ask(d, c, group, job):
    """One request; returns its comparable answer, or None (a failed check) if it is not a 200."""
    kind, model, image = job
    if kind == "detect":
        r = d.post_raw("/v1/detect", image.read_bytes(), "image/jpeg", query={"model": model}, timeout=600)
    else:
        r = d.post_raw("/v1/faces", image.read_bytes(), "image/jpeg", query={"embedding": "true"}, timeout=600)
    if not c.check(group, r.status == 200, f"{kind} {model or ''} {image.name}: 200", f"{r.status} {r.body[:200]}"):
        return None
    return detect_key(r.json()) if kind == "detect" else faces_key(r.json())


def run_mode(visiond, c, mode, workers, jobs, reference):
    group = f"threading={mode}"
    d = daemon.Daemon(visiond, "--threads", "2", "--threading", mode, workers=workers)
    try:
        lone = {job: ask(d, c, group, job) for job in jobs}
        together = {}

        def client(part):
            for job in part:
                together[job] = ask(d, c, group, job)

        threads = [threading.Thread(target=client, args=(jobs[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        code, err = d.stop()
    c.check(group, code == 0, "exits 0 on SIGTERM", err[-500:])
    c.check(group, not daemon.sanitizer_report(err), "no sanitizer report", daemon.sanitizer_report(err))
    ref = reference if reference is not None else lone
    for job in jobs:
        name = f"{job[0]} {job[1] or ''} {job[2].name}"
        c.check(group, lone[job] is not None and lone[job] == ref[job], f"{name}: lone answer as in throughput mode",
                f"{lone[job]} vs {ref[job]}")
        c.check(group, together.get(job) == ref[job], f"{name}: answer under 4 clients as in throughput mode",
                f"{together.get(job)} vs {ref[job]}")
    return lone


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    images = sorted((daemon.SHARED / "images").glob("*.jpg"))
    if not images or not all((daemon.ROOT / "models" / m / f"{m}.cfg").exists() for m in MODELS):
        print("skipped: models or ../shared/images missing")
        return 77
    jobs = [("detect", m, img) for m in MODELS for img in images]
    if FACE_PHOTO.exists():
        jobs.append(("faces", None, FACE_PHOTO))
    c = daemon.Checks()

    p = daemon.run_visiond(args.visiond, "serve", "--threads", "3", "--threading", "latency", "--print-config")
    rows = dict(line.split("=", 1)[0].split()[0:1] + [line.split("=", 1)[1].split("#")[0].strip()]
                for line in p.stdout.splitlines() if "=" in line and not line.startswith("#"))
    c.check("config", rows.get("threads") == "3" and rows.get("threading") == "latency",
            "--print-config shows threads and threading", p.stdout[-600:])
    p = daemon.run_visiond(args.visiond, "serve", "--threading", "fastest", "--port", "0")
    c.check("config", p.returncode not in (0, None) and "threading" in p.stderr and "throughput" in p.stderr,
            "an unknown threading mode is fatal and names the choices", f"exit {p.returncode}: {p.stderr[-300:]}")

    reference = None
    for mode, workers in MODES:
        answers = run_mode(args.visiond, c, mode, workers, jobs, reference)
        if reference is None:
            reference = answers
    c.check("reference", sum(len(a or []) for a in reference.values()) > 0, "the images give detections at all")
    return c.summary("test_threading")


if __name__ == "__main__":
    sys.exit(main())
