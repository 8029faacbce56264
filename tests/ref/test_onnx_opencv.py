#!/usr/bin/python3
"""bench/darknet2onnx's graphs run by ONNX Runtime against OpenCV DNN 4.6 running the darknet files themselves.

The benchmark's ONNX Runtime column is only a fair comparison if ONNX Runtime computes the same network, so every
converted model is checked here, live:
  real models   : yolo-fastest-1.1 and -xl (../shared/models) with their weights, on dog.jpg at the cfg's size
  random weights: every cfg in ../shared/models/cfg (yolov2/v3/v4-tiny, yolov3, yolov4) with
                  scripts/gen-random-weights (seed 1), on dog.jpg at the cfg's size
  every layer   : a small cfg written here with what the standard cfgs lack (logistic, relu, tanh, swish, linear
                  and leaky shortcuts, explicit padding, grouped and depthwise convs, odd pools, route groups,
                  dropout, upsample, a global [avgpool], three heads), random weights
Each graph output is a head's raw input (the conv before a [yolo]/[region]); OpenCV's is the output of the layer it
adds just before that head (before its NCHW -> NHWC permute for [yolo]; checked to have the same shape). Pass if ||ort - opencv|| / ||opencv|| <= 1e-4 on
every head of every model.

ONNX Runtime is onnxruntime-node (bench/ort, `npm ci --ignore-scripts` there; node runs bench/ort/run.mjs).
Exit 0 if all pass, 1 on any failure, 77 if cv2, onnx, node or bench/ort's packages are missing.
"""
import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

try:
    import cv2
    import numpy as np
    import onnx  # noqa: F401  (darknet2onnx needs it; a clear skip beats its traceback)
except ImportError as e:
    print(f"SKIP: {e} (python3-opencv, python3-onnx)")
    sys.exit(77)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_raw_opencv import load_opencv, make_blob, net_size  # noqa: E402  (the same blob and net set-up)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path("../shared")
IMAGE = SHARED / "images" / "dog.jpg"
REAL_MODELS = ["yolo-fastest-1.1", "yolo-fastest-1.1-xl"]
REL = 1e-4

# What the standard cfgs do not use. OpenCV's darknet importer needs every conv to have batch_normalize or a bias,
# and a [yolo] head's channels to be mask * (5 + classes).
EVERY_LAYER_CFG = """[net]
width=96
height=64
channels=3

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=logistic

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
groups=16
activation=relu

[convolutional]
filters=24
size=1
stride=1
pad=1
activation=tanh

[convolutional]
batch_normalize=1
filters=24
size=3
stride=1
pad=0
padding=1
groups=3
activation=swish

[shortcut]
from=-2
activation=leaky

[maxpool]
size=3
stride=2

[convolutional]
batch_normalize=1
filters=24
size=5
stride=1
pad=1
activation=mish

[shortcut]
from=-2
activation=linear

[dropout]
probability=.5

[route]
layers=-1
groups=2
group_id=1

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3

[route]
layers=-4

[upsample]
stride=2

[route]
layers=-1,-8

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3

[route]
layers=-3

[avgpool]

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
"""


def opencv_heads(cfg, weights, blob):
    """OpenCV's outputs of the layers just before each [yolo]/[region] layer, in cfg order."""
    net = load_opencv(cfg, weights)
    names = list(net.getLayerNames())
    # [yolo] layers are yolo_<i>; the one [region] a cfg may have is named detection_out
    heads = [n for n in names if n.startswith(("yolo_", "region_")) or n == "detection_out"]
    if not heads:
        raise RuntimeError(f"no [yolo]/[region] layer among OpenCV's layers of {cfg}")
    before = [names[names.index(h) - 1] for h in heads]
    # OpenCV puts an NCHW -> NHWC permute in front of a [yolo] head: take the layer before it
    before = [names[names.index(b) - 1] if b.startswith("permute_") else b for b in before]
    net.setInput(blob)
    return [np.array(o, dtype=np.float32) for o in net.forward(before)], before


def ort_heads(onnx_path, blob, tmp):
    inp, out = tmp / "in.f32", tmp / "ort"
    out.mkdir(exist_ok=True)
    blob.astype("<f4").tofile(inp)
    cmd = ["node", str(ROOT / "bench" / "ort" / "run.mjs"), "--model", str(onnx_path), "--input", str(inp),
           "--shape", ",".join(map(str, blob.shape)), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"bench/ort/run.mjs exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    heads = sorted(res["outputs"], key=lambda o: int(o["name"].split("_")[1]))  # head_<layer>: cfg order
    return [np.fromfile(o["file"], dtype="<f4").reshape(o["dims"]) for o in heads], [o["name"] for o in heads]


def check(label, cfg, weights, tmp):
    width, height = net_size(cfg)
    onnx_path = tmp / f"{pathlib.Path(cfg).stem}.onnx"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "darknet2onnx"), str(cfg), str(weights),
                           str(onnx_path)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(f"FAIL {label}: darknet2onnx exited {proc.returncode}: {proc.stderr.strip()}")
        return False
    blob = make_blob(IMAGE, width, height)
    ref, ref_names = opencv_heads(cfg, weights, blob)
    ours, our_names = ort_heads(onnx_path, blob, tmp)
    if len(ref) != len(ours) or len(ref_names) != len(ref):
        print(f"FAIL {label}: {len(ours)} ONNX outputs, OpenCV has {len(ref)} heads")
        return False
    ok = True
    for r, o, rn, on in zip(ref, ours, ref_names, our_names):
        if r.shape != o.shape:
            print(f"FAIL {label} {on}: shape {o.shape}, OpenCV's {rn} {r.shape}")
            ok = False
            continue
        rel = float(np.linalg.norm(o.astype(np.float64) - r) / max(np.linalg.norm(r.astype(np.float64)), 1e-30))
        good = rel <= REL and np.isfinite(o).all()
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {label} {on} vs {rn} {tuple(r.shape)}: rel {rel:.2e} "
              f"(max |diff| {float(np.abs(o - r).max()):.2e}, max |opencv| {float(np.abs(r).max()):.2e})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visiond", help="unused (ctest passes it to every reference test)")
    ap.parse_args()
    if not shutil.which("node") or not (ROOT / "bench" / "ort" / "node_modules" / "onnxruntime-node").is_dir():
        print("SKIP: needs node and bench/ort's packages (cd bench/ort && npm ci --ignore-scripts)")
        return 77
    ok = True
    with tempfile.TemporaryDirectory(prefix="visiond-onnx-") as tmp:
        tmp = pathlib.Path(tmp)
        every = tmp / "every-layer.cfg"
        every.write_text(EVERY_LAYER_CFG, encoding="utf-8")
        models = [(m, SHARED / "models" / m / f"{m}.cfg", SHARED / "models" / m / f"{m}.weights")
                  for m in REAL_MODELS]
        models += [(f"{c.stem} (random weights)", c, None) for c in sorted((SHARED / "models" / "cfg").glob("*.cfg"))]
        models += [("every-layer (random weights)", every, None)]
        for label, cfg, weights in models:
            if weights is None:
                weights = tmp / f"{cfg.stem}.weights"
                subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-random-weights"), str(cfg),
                                str(weights), "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
            try:
                ok &= check(label, cfg, weights, tmp)
            except (RuntimeError, cv2.error, ValueError) as e:
                print(f"FAIL {label}: {e}")
                ok = False
            for f in tmp.glob("*.onnx"):
                f.unlink()
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
