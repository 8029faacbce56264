#!/usr/bin/env python3
"""The daemon, the CLI and the engine driven directly give the same bits (issue 12).

One engine, three entry points: `visiond serve` (HTTP, worker pool, threading=auto), `visiond detect` /
`visiond faces` (the CLI) and the test helpers visiond_detdump / visiond_facedump (engine/detect.c and
engine/face.c called directly). All three run in this process's environment unchanged (OPENBLAS_* as the
machine sets them; VISIOND_KERNELS passed through when scripts/test forces a kernel set), and answer at
full precision (json_precision=full: every float as computed, 9 significant digits), so equality here is
equality of the floats, not of their rounding.

Checked, on every photo in ../shared/images and face-api's demo photos:
  detections  every model in models/: class, confidence and box of every detection, in order;
  faces       box, det_score, the 68 landmarks and the 128-d embedding of every face (largest first).
And `visiond --version` names the kernel set in use: the forced one when VISIOND_KERNELS is set.

usage: test_bitwise.py --visiond build/visiond
"""
import argparse
import json
import os
import pathlib
import re
import struct
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

ROOT = daemon.ROOT
IMAGES = sorted((ROOT.parent / "shared" / "images").glob("*.jpg"))
FACE_PHOTOS = sorted((ROOT / "models" / "faces" / "package" / "demo").glob("sample*.jpg"))
FULL = {"VISIOND_JSON_PRECISION": "full"}


def f32(x):
    """The float32 a printed number reads back as (both sides print floats with 9 digits)."""
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def same_floats(a, b):
    return len(a) == len(b) and all(f32(x) == f32(y) for x, y in zip(a, b))


def first_float_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if f32(x) != f32(y):
            return f"[{i}] {x!r} vs {y!r}"
    return f"{len(a)} vs {len(b)} values" if len(a) != len(b) else ""


def detection_floats(d):
    """class, confidence, box of one detection, from either form (daemon/CLI JSON or detdump)."""
    box = d["box"]
    box = [box[k] for k in ("x1", "y1", "x2", "y2")] if isinstance(box, dict) else box
    return [d["class_id"], d["confidence"], *box]


def face_floats(f):
    box = f["box"]
    box = [box[k] for k in ("x1", "y1", "x2", "y2")] if isinstance(box, dict) else box
    score = f.get("det_score", f.get("score"))
    marks = [v for p in f["landmarks"] for v in p]
    emb = f.get("embedding", f.get("descriptor"))
    return [*box, score, *marks, *emb]


def area(f):
    box = f["box"]
    box = [box[k] for k in ("x1", "y1", "x2", "y2")] if isinstance(box, dict) else box
    return (box[2] - box[0]) * (box[3] - box[1])


def run(argv, env=None, timeout=600):
    p = subprocess.run([str(a) for a in argv], cwd=ROOT, env=daemon.clean_env(env), capture_output=True,
                       text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr[-2000:]}")
    return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]


def check_version(c, visiond):
    p = subprocess.run([str(visiond), "--version"], env=daemon.clean_env(), capture_output=True, text=True,
                       timeout=60, check=False)
    m = re.search(r"^kernels: (\S+) \(this processor runs: ([^;]*);", p.stdout, re.M)
    c.check("version", p.returncode == 0 and m is not None, "visiond --version names the kernel set",
            p.stdout + p.stderr)
    c.check("version", re.search(r"^blas: OpenBLAS, core \S+", p.stdout, re.M) is not None,
            "visiond --version names the OpenBLAS core", p.stdout)
    forced = os.environ.get("VISIOND_KERNELS", "")
    if m and forced and forced != "auto":
        c.check("version", m.group(1) == forced, f"VISIOND_KERNELS={forced} is the set in use", m.group(1))
    elif m:
        widest = m.group(2).split()[-1]
        c.check("version", m.group(1) == widest, "without VISIOND_KERNELS the widest set runs",
                f"{m.group(1)} vs {widest}")
    return m.group(1) if m else "?"


def compare(c, g, what, photos, engine, cli, ask, key, floats, order=lambda items: items):
    """For each photo: the daemon's answer (ask(photo)) and the CLI's (cli[i][key]) equal the engine's
    (engine[i][key], put in the answer's order by `order`), float for float."""
    c.check(g, len(engine) == len(cli) == len(photos), "one answer per photo from CLI and engine",
            f"{len(cli)} / {len(engine)}")
    total = 0
    for img, e, k in zip(photos, engine, cli):
        r = ask(img)
        http = (r.json() if r.status == 200 else {}).get(key)
        if not c.check(g, http is not None, f"{img.name}: the daemon answers", repr(r)):
            continue
        want = [floats(x) for x in order(e[key])]
        total += len(want)
        for name, got in (("daemon", http), ("CLI", k[key])):
            got = [floats(x) for x in got]
            diff = "" if len(got) == len(want) else f"{len(got)} vs {len(want)} {what}"
            for i, (a, b) in enumerate(zip(got, want)):
                if not diff and not same_floats(a, b):
                    diff = f"{what} {i}: {first_float_difference(a, b)}"
            c.check(g, not diff, f"{img.name}: {name} = engine, every bit ({len(want)} {what})", diff)
    c.check(g, total > 0, f"the photos give {what} to compare", str(total))


def check_detect(c, visiond, detdump, d, model):
    engine = run([detdump, "--model", ROOT / "models" / model, *IMAGES])
    cli = run([visiond, "detect", "--models-dir", "models", "--model", model, *IMAGES], env=FULL)
    compare(c, f"detect {model}", "detections", IMAGES, engine, cli,
            lambda img: d.post_raw("/v1/detect", img.read_bytes(), "image/jpeg", query={"model": model},
                                   timeout=300),
            "detections", detection_floats)


def check_faces(c, visiond, facedump, d):
    """Box, score, landmarks and embedding of every face, largest first (the daemon's order)."""
    engine = run([facedump, "--models", ROOT / "models" / "faces", *FACE_PHOTOS])
    cli = run([visiond, "faces", "--models-dir", "models", "--embedding", *FACE_PHOTOS], env=FULL)
    compare(c, "faces", "faces", FACE_PHOTOS, engine, cli,
            lambda img: d.post_raw("/v1/faces", img.read_bytes(), "image/jpeg", query={"embedding": "true"},
                                   timeout=300),
            "faces", face_floats, order=lambda faces: sorted(faces, key=lambda f: -area(f)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    visiond = pathlib.Path(args.visiond).resolve()
    tools = visiond.parent / "tests"
    detdump, facedump = tools / "visiond_detdump", tools / "visiond_facedump"
    models = sorted(p.name for p in (ROOT / "models").iterdir()
                    if p.is_dir() and (p / f"{p.name}.cfg").exists())
    missing = [str(p) for p in (detdump, facedump) if not p.exists()]
    if missing or not IMAGES or not FACE_PHOTOS or not models:
        print(f"FAIL: missing helpers {missing}, photos ({len(IMAGES)}, {len(FACE_PHOTOS)}) or models {models} "
              "(scripts/fetch-models)")
        return 1
    c = daemon.Checks()
    kernels = check_version(c, visiond)
    print(f"kernel set: {kernels}; models: {', '.join(models)}")
    with daemon.Daemon(visiond, "--json-precision", "full") as d:
        d.wait_ready(timeout=120)
        c.check("version", f"kernels {kernels}," in d.stderr(), "the daemon's start-up line names the kernel set",
                d.stderr()[-500:])
        c.check("version", f'visiond_kernels_info{{set="{kernels}"}} 1' in d.get("/metrics").body.decode(),
                "/metrics names the kernel set (visiond_kernels_info)")
        for model in models:
            check_detect(c, visiond, detdump, d, model)
        check_faces(c, visiond, facedump, d)
    return c.summary("test_bitwise")


if __name__ == "__main__":
    sys.exit(main())
