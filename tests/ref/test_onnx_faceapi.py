#!/usr/bin/python3
"""bench/tfjs2onnx's face graphs run by ONNX Runtime against face-api itself (TF.js under node) on the same tensors.

The benchmark's ONNX Runtime rows for the face networks are only fair if ONNX Runtime computes the same networks,
so each converted graph is checked here, live, on real inputs:
  tiny face detector @416  every photo of ../shared/images and face-api's demo photos (models/faces/package/demo),
                           padded and resized by face-api (toBatchTensor), plus one noise input
  68-landmark net @112     the first two faces face-api finds in each demo photo, cut out and padded by face-api,
                           plus one noise input
  recognition net @150     the aligned chips of those faces (face-api's dlib alignment), two 150x150 chips of each
                           person in ../shared/faces/dlib_johns, plus one noise input
tests/ref/faceapi/netio.mjs writes face-api's input tensors (NHWC, RGB 0..255, before its mean subtraction) and its
raw outputs (detector grid, landmark fc output, descriptor); each input is transposed to NCHW and the whole batch
run through bench/ort/run.mjs (onnxruntime-node). Pass if, for every input of every net, max |ort - face-api| <=
1e-5 x max |face-api| (the output's scale; measured about 1e-6: float32 summation order) and the shapes agree.

A negative control runs every net once more with two weights of its first conv swapped in the ONNX file: each
must then fail the same comparison, so a comparison that cannot fail does not pass unnoticed.

Exit 0 if all pass, 1 on any failure, 77 if a tool is missing (numpy, onnx, node, bench/ort's or
tests/ref/faceapi's packages, the face models): with VISIOND_SKIP_FAILS (CI) that is a failure too.
"""
import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:
    print(f"SKIP: {e} (python3-numpy, python3-onnx)")
    sys.exit(77)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path("../shared")
MODELS = ROOT / "models" / "faces"
DEMO = MODELS / "package" / "demo"
NETS = ["tiny_face_detector", "face_landmark_68", "face_recognition"]
MIN_INPUTS = {"tiny_face_detector": 10, "face_landmark_68": 8, "face_recognition": 15}  # no vacuous pass
REL = 1e-5
CHIPS_PER_PERSON = 2


def run(cmd, what):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ort(model, x, tmp):
    """ONNX Runtime's output on the NCHW batch x."""
    inp, out = tmp / "ort-in.f32", tmp / "ort"
    out.mkdir(exist_ok=True)
    x.astype("<f4").tofile(inp)
    res = run(["node", ROOT / "bench" / "ort" / "run.mjs", "--model", model, "--input", inp, "--shape",
               ",".join(map(str, x.shape)), "--out", out], "bench/ort/run.mjs")
    if len(res["outputs"]) != 1:
        raise RuntimeError(f"{model.name}: {len(res['outputs'])} outputs, expected 1")
    o = res["outputs"][0]
    return np.fromfile(o["file"], dtype="<f4").reshape(o["dims"])


def compare(net, labels, ours, ref, quiet=False):
    """Worst max |ours - ref| / max |ref| over the inputs; prints one line per failing input (and the worst)."""
    if ours.shape != ref.shape:
        print(f"FAIL {net}: ONNX Runtime's output {ours.shape}, face-api's {ref.shape}")
        return float("inf")
    worst, worst_i = 0.0, 0
    for i, label in enumerate(labels):
        scale = float(np.abs(ref[i]).max())
        err = float(np.abs(ours[i].astype(np.float64) - ref[i]).max()) / max(scale, 1e-30)
        if not np.isfinite(ours[i]).all():
            err = float("inf")
        if err > worst:
            worst, worst_i = err, i
        if err > REL and not quiet:
            print(f"FAIL {net} {label}: max |diff| / max |face-api| = {err:.2e} (scale {scale:.3g})")
    if not quiet:
        print(f"{'ok  ' if worst <= REL else 'FAIL'} {net}: {len(labels)} inputs, worst max|diff|/max|face-api| "
              f"{worst:.2e} ({labels[worst_i]}), tolerance {REL:.0e}")
    return worst


def swap_first_conv(model_path, out_path):
    """The graph with two weights of its first Conv's filter swapped (output channels 0 and 1, first tap)."""
    m = onnx.load(str(model_path))
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    init = next(i for i in m.graph.initializer if i.name == conv.input[1])
    w = numpy_helper.to_array(init).copy()
    w[0, 0, 0, 0], w[1, 0, 0, 0] = w[1, 0, 0, 0], w[0, 0, 0, 0]
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, str(out_path))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visiond", help="unused (ctest passes it to every reference test)")
    ap.parse_args()
    missing = [what for what, ok in (
        ("node", shutil.which("node")),
        ("bench/ort's packages (cd bench/ort && npm ci --ignore-scripts)",
         (ROOT / "bench" / "ort" / "node_modules" / "onnxruntime-node").is_dir()),
        ("tests/ref/faceapi's packages (scripts/install-test-deps)",
         (ROOT / "tests" / "ref" / "faceapi" / "node_modules" / "@vladmandic" / "face-api").is_dir()),
        ("the face models and demo photos (scripts/fetch-models)",
         all((MODELS / f"{n}_model-weights_manifest.json").is_file() for n in NETS) and (DEMO / "sample1.jpg").is_file()),
        ("../shared/images and ../shared/faces/dlib_johns",
         (SHARED / "images" / "dog.jpg").is_file() and (SHARED / "faces" / "dlib_johns").is_dir()),
    ) if not ok]
    if missing:
        print("SKIP: needs " + "; ".join(missing))
        return 77
    photos = sorted((SHARED / "images").glob("*.jpg")) + sorted(DEMO.glob("sample*.jpg"))
    chips = [c for d in sorted((SHARED / "faces" / "dlib_johns").iterdir()) if d.is_dir()
             for c in sorted(d.glob("*.jpg"))[:CHIPS_PER_PERSON]]
    ok = True
    with tempfile.TemporaryDirectory(prefix="visiond-onnx-faces-") as tmp:
        tmp = pathlib.Path(tmp)
        try:
            models = {}
            for n in NETS:
                models[n] = tmp / f"{n}.onnx"
                proc = subprocess.run(["/usr/bin/python3", ROOT / "bench" / "tfjs2onnx",
                                       MODELS / f"{n}_model-weights_manifest.json", models[n]],
                                      capture_output=True, text=True, timeout=600)
                if proc.returncode != 0:
                    raise RuntimeError(f"tfjs2onnx {n} exited {proc.returncode}: {proc.stderr.strip()}")
            io = run(["node", ROOT / "tests" / "ref" / "faceapi" / "netio.mjs", "--out", tmp / "io", "--noise",
                      *photos, "--aligned", *chips], "tests/ref/faceapi/netio.mjs")
            print(f"face-api {io['faceapi_version']} (TF.js {io['tfjs_version']}, {io['backend']}) against ONNX "
                  f"Runtime (onnxruntime-node, bench/ort) on the graphs of bench/tfjs2onnx")
            for n in NETS:
                meta = io["nets"][n]
                s, count = meta["size"], meta["count"]
                if count < MIN_INPUTS[n]:
                    print(f"FAIL {n}: only {count} inputs (expected at least {MIN_INPUTS[n]})")
                    ok = False
                    continue
                x = np.fromfile(tmp / "io" / f"{n}.in.f32", dtype="<f4").reshape(count, s, s, 3)
                ref = np.fromfile(tmp / "io" / f"{n}.out.f32", dtype="<f4").reshape(count, *meta["out_dims"])
                x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))

                def nhwc(y):  # the detector's grid: NCHW in ONNX, NHWC in face-api
                    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y

                ok &= compare(n, meta["labels"], nhwc(ort(models[n], x, tmp)), ref) <= REL
                bad = tmp / f"{n}-swapped.onnx"
                swap_first_conv(models[n], bad)
                err = compare(n, meta["labels"], nhwc(ort(bad, x, tmp)), ref, quiet=True)
                control = err > REL
                print(f"{'ok  ' if control else 'FAIL'} {n} negative control (two first-conv weights swapped): "
                      f"worst {err:.2e} {'fails' if control else 'PASSES: the comparison cannot fail'}")
                ok &= control
        except (RuntimeError, ValueError, KeyError, OSError, subprocess.TimeoutExpired) as e:
            print(f"FAIL: {e}")
            ok = False
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
