#!/usr/bin/python3
"""engine/face.c against face-api itself (tests/ref/faceapi/run-reference: @vladmandic/face-api 1.7.15 on
TF.js 4.22 in node), on the same decoded pixels.

  photos   : the package's demo/sample*.jpg at input sizes 416 (default), 224 and 608, and the dlib_johns
             photos at 416: every face on one side matches one on the other with box IoU >= 0.95 and
             |score difference| <= 0.02 (a face may be missing on one side only if its score is within
             0.02 of the threshold); landmarks within 1.0 px on average; end-to-end descriptors (our
             detection, landmarks and alignment) within Euclidean 0.05
  aligned  : descriptors of the 55 dlib_johns 150x150 chips within Euclidean 0.01 of face-api's
  verify   : over all pairs of those chips, Euclidean < 0.6 decides "same person" correctly for >= 95 %
             (prints the confusion table)

Run by ctest as /usr/bin/python3 tests/ref/test_faces_faceapi.py --visiond <build>/visiond; the helper
visiond_facedump is found in <build>/tests/ (or given with --facedump). Exit 0 if all pass, 1 on any
failure, 77 (skipped) without models/faces, node, the reference's node_modules or cv2.
"""
import argparse
import itertools
import json
import math
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "models" / "faces"
DEMO = MODELS / "package" / "demo"
JOHNS = ROOT.parent / "shared" / "faces" / "dlib_johns"
REFERENCE = ROOT / "tests" / "ref" / "faceapi" / "run-reference"

IOU_MIN = 0.95
SCORE_TOL = 0.02
LANDMARK_TOL = 1.0
ALIGNED_TOL = 0.01
END_TO_END_TOL = 0.05
MATCH_THRESHOLD = 0.6
ACCURACY_MIN = 0.95


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def reference(photos, aligned, size):
    args = [str(REFERENCE), "--input-size", str(size)] + [str(p) for p in photos]
    if aligned:
        args += ["--aligned"] + [str(p) for p in aligned]
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if r.returncode == 77:
        skip(f"reference: {r.stderr.strip()}")
    if r.returncode != 0:
        sys.exit(f"FAIL: run-reference exited {r.returncode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def ours(facedump, images, size=None, aligned=False):
    args = [str(facedump), "--models", str(MODELS)]
    if size:
        args += ["--input-size", str(size)]
    if aligned:
        args.append("--aligned")
    r = subprocess.run(args + [str(p) for p in images], cwd=ROOT, capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        sys.exit(f"FAIL: visiond_facedump exited {r.returncode}: {r.stderr[-2000:]}")
    return {pathlib.Path(d["image"]).resolve(): d for d in map(json.loads, r.stdout.splitlines())}


class Worst:
    def __init__(self):
        self.iou, self.score, self.landmarks, self.descriptor, self.faces = 1.0, 0.0, 0.0, 0.0, 0

    def __str__(self):
        return (f"{self.faces} faces: min IoU {self.iou:.6f}, max |dscore| {self.score:.2e}, "
                f"max landmark mean {self.landmarks:.4f} px, max descriptor {self.descriptor:.2e}")


def compare_photos(ref, mine, size, worst, failures):
    for photo in ref["photos"]:
        path = (ROOT / photo["image"]).resolve()
        name = f"{path.name}@{size}"
        if "error" in photo:
            failures.append(f"{name}: reference error {photo['error']}")
            continue
        got = mine.get(path)
        if got is None or "error" in got:
            failures.append(f"{name}: visiond_facedump: {got and got.get('error')}")
            continue
        theirs = [dict(f, box=[f["box"][k] for k in ("x1", "y1", "x2", "y2")]) for f in photo["faces"]]
        used = set()
        for f in theirs:
            best, k = max(((iou(f["box"], g["box"]), i) for i, g in enumerate(got["faces"])
                           if i not in used), default=(0.0, -1))
            if best < IOU_MIN:
                if abs(f["det_score"] - ref["det_threshold"]) > SCORE_TOL:
                    failures.append(f"{name}: face-api's face {f['box']} ({f['det_score']:.4f}) not "
                                    f"found (best IoU {best:.3f})")
                continue
            used.add(k)
            g = got["faces"][k]
            worst.faces += 1
            worst.iou = min(worst.iou, best)
            ds = abs(f["det_score"] - g["score"])
            worst.score = max(worst.score, ds)
            if ds > SCORE_TOL:
                failures.append(f"{name}: score {g['score']:.5f} vs face-api {f['det_score']:.5f}")
            if "landmarks" not in g or "descriptor" not in g:
                failures.append(f"{name}: face {g['box']}: no landmarks/descriptor: {g.get('error')}")
                continue
            lm = sum(dist(p, q) for p, q in zip(f["landmarks"], g["landmarks"])) / len(f["landmarks"])
            worst.landmarks = max(worst.landmarks, lm)
            if lm > LANDMARK_TOL:
                failures.append(f"{name}: landmarks {lm:.3f} px apart on average")
            dd = dist(f["descriptor"], g["descriptor"])
            worst.descriptor = max(worst.descriptor, dd)
            if dd > END_TO_END_TOL:
                failures.append(f"{name}: end-to-end descriptor {dd:.4f} from face-api's")
        for i, g in enumerate(got["faces"]):
            if i not in used and abs(g["score"] - ref["det_threshold"]) > SCORE_TOL:
                failures.append(f"{name}: our face {g['box']} ({g['score']:.4f}) not in face-api's")


def verification(descriptors):
    """Confusion table of Euclidean < MATCH_THRESHOLD over all pairs: {(same, predicted): count}."""
    table = {(s, p): 0 for s in (True, False) for p in (True, False)}
    for (pa, da), (pb, db) in itertools.combinations(descriptors.items(), 2):
        table[(pa.parent.name == pb.parent.name, dist(da, db) < MATCH_THRESHOLD)] += 1
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visiond", help="path of the visiond binary (its build's tests/ has the helper)")
    ap.add_argument("--facedump", help="path of visiond_facedump")
    args = ap.parse_args()
    facedump = pathlib.Path(args.facedump) if args.facedump else (
        pathlib.Path(args.visiond).resolve().parent / "tests" / "visiond_facedump" if args.visiond else None)
    if not facedump or not facedump.exists():
        sys.exit(f"FAIL: visiond_facedump not found ({facedump}); pass --facedump")
    if not (MODELS / "face_recognition_model-weights_manifest.json").exists():
        skip(f"no face models in {MODELS} (run scripts/fetch-models)")
    demo = sorted(DEMO.glob("sample*.jpg"))
    chips = sorted(JOHNS.glob("*/*.jpg"))
    if not demo:
        skip(f"no demo photos in {DEMO}")
    failures = []

    for size in (416, 224, 608):
        photos = demo + (chips if size == 416 else [])
        ref = reference(photos, chips if size == 416 else [], size)
        mine = ours(facedump, photos, size)
        worst = Worst()
        compare_photos(ref, mine, size, worst, failures)
        print(f"photos @{size} ({ref['backend']} backend): {worst}")
        if size != 416:
            continue
        if not chips:
            print(f"aligned: no chips in {JOHNS}: skipped")
            continue
        mine_aligned = ours(facedump, chips, aligned=True)
        theirs = {(ROOT / a["image"]).resolve(): a["descriptor"] for a in ref["aligned"]}
        descriptors = {}
        worst_aligned = 0.0
        for path, d in theirs.items():
            g = mine_aligned.get(path)
            if g is None or "descriptor" not in g:
                failures.append(f"aligned {path.name}: no descriptor: {g and g.get('error')}")
                continue
            descriptors[path] = g["descriptor"]
            dd = dist(d, g["descriptor"])
            worst_aligned = max(worst_aligned, dd)
            if dd > ALIGNED_TOL:
                failures.append(f"aligned {path.name}: descriptor {dd:.4f} from face-api's")
        print(f"aligned: {len(descriptors)} chips, max descriptor difference {worst_aligned:.2e}")
        for who, table in (("visiond", verification(descriptors)),
                           ("face-api", verification({p: theirs[p] for p in descriptors}))):
            total = sum(table.values())
            right = table[(True, True)] + table[(False, False)]
            print(f"verify ({who}, Euclidean < {MATCH_THRESHOLD}): {right}/{total} = {right / total:.2%}"
                  f"; same person: {table[(True, True)]} matched, {table[(True, False)]} missed;"
                  f" different: {table[(False, False)]} rejected, {table[(False, True)]} confused")
            if who == "visiond" and right / total < ACCURACY_MIN:
                failures.append(f"verification accuracy {right / total:.2%} < {ACCURACY_MIN:.0%}")

    for f in failures:
        print("FAIL:", f)
    print("FAILED" if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
