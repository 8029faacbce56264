#!/usr/bin/python3
"""Raw detection-head outputs of `visiond forward` against OpenCV DNN 4.6 (Debian's python3-opencv).

  real models  : yolo-fastest-1.1 and -xl (../shared/models) on the six ../shared/images/*.jpg
                 pass if max |ours - opencv| <= 1e-3 on every head
  random models: yolov2-tiny, yolov3-tiny, yolov4-tiny, yolov3 (../shared/models/cfg) with weights from
                 scripts/gen-random-weights, on dog.jpg at the cfg's own input size
                 pass if ||ours - opencv|| / ||opencv|| <= 1e-4 on every head

Both sides get the same tensor: cv2.dnn.blobFromImage(imread(img), 1/255, (W, H), swapRB=True, crop=False).

What OpenCV's Region layer outputs (modules/dnn/src/layers/region_layer.cpp and darknet/darknet_io.cpp, checked
against this cv2 by reproducing its output from the preceding conv's output to 1e-6):
  - one row per (cell, anchor): row = (y * grid_w + x) * anchors + a, cols = x, y, w, h, objectness, classes.
    x, y are normalized by the grid; w, h by the network input for [yolo] (it gets the input blob as a second
    input) but by the grid for [region] (anchors are in grid units there).
  - class columns = objectness * class probability, set to 0 unless > thresh ("prob > thresh ? prob : 0").
    thresh comes from the cfg's `thresh` key; darknet_io's default is 0.2 for [yolo] and 0.001 for [region]
    (yolov2-tiny.cfg says thresh=.6). The objectness column is not thresholded.
  - [region] (YOLOv2) also runs a per-class NMS inside the layer: darknet_io passes no nms_threshold, so the
    layer's default 0.4 applies, with score threshold = thresh (it zeroes suppressed scores). [yolo] gets
    nms_threshold from the cfg, default 0 = no NMS (seen: thousands of overlapping same-class rows survive).
Our `forward` writes the same rows but with class scores neither thresholded nor suppressed, so this test applies
OpenCV's rule to ours before comparing: where(ours > t, ours, 0), then for [region] the same cv2.dnn.NMSBoxes.

Exit 0 if all pass, 1 on any failure, 77 if cv2 is missing.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

try:
    import cv2
    import numpy as np
except ImportError:
    print("SKIP: python3-opencv not installed")
    sys.exit(77)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path("../shared")  # tests run from the project root; CI has ../shared there too
IMAGES = sorted((SHARED / "images").glob("*.jpg"))
REAL_MODELS = ["yolo-fastest-1.1", "yolo-fastest-1.1-xl"]
RANDOM_MODELS = ["yolov2-tiny", "yolov3-tiny", "yolov4-tiny", "yolov3"]
REAL_MAX_ABS = 1e-3
RANDOM_REL = 1e-4
THRESH_BAND = 1e-3  # how close to a step (score or NMS threshold) a value must be to be accepted either way
REGION_NMS = 0.4    # RegionLayerImpl's default nms_threshold, which darknet_io leaves in place for [region]


# ---- cfg facts both sides need ------------------------------------------------------------------------------

def read_cfg(path):
    """Sections of a darknet cfg as (name, {key: value}), [net] first. Spaces are dropped like darknet_io does."""
    sections = []
    for raw in open(path, encoding="utf-8"):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            sections.append((line.strip("[]"), {}))
        elif "=" in line:
            key, value = line.split("=", 1)
            sections[-1][1][key.strip()] = value.replace(" ", "")
    return sections


def net_size(cfg):
    net = read_cfg(cfg)[0][1]
    return int(net.get("width", 416)), int(net.get("height", 416))


def head_specs(cfg):
    """Per detection head in cfg order: kind, anchors per cell, OpenCV's score threshold and in-layer NMS."""
    heads = []
    for name, opts in read_cfg(cfg)[1:]:
        if name == "yolo":
            heads.append(dict(kind="yolo", anchors=len(opts["mask"].split(",")),
                              thresh=float(opts.get("thresh", 0.2)),
                              nms=float(opts.get("nms_threshold", 0.0))))
        elif name == "region":
            heads.append(dict(kind="region", anchors=int(opts["num"]),
                              thresh=float(opts.get("thresh", 0.001)), nms=REGION_NMS))
    return heads


# ---- running both sides --------------------------------------------------------------------------------------

def make_blob(image, width, height):
    img = cv2.imread(str(image))
    if img is None:
        raise RuntimeError(f"cannot read {image}")
    return cv2.dnn.blobFromImage(img, 1 / 255.0, (width, height), swapRB=True, crop=False)


def load_opencv(cfg, weights):
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


def run_opencv(net, blob):
    net.setInput(blob)
    return [np.array(o, dtype=np.float32) for o in net.forward(net.getUnconnectedOutLayersNames())]


def run_visiond(visiond, cfg, weights, blob, tmp):
    """`visiond forward` on the blob; returns [(layer, array)] per head or raises RuntimeError."""
    inp, prefix = tmp / "in.f32", tmp / "out"
    blob.astype("<f4").tofile(inp)
    cmd = [str(visiond), "forward", "--cfg", str(cfg), "--weights", str(weights),
           "--input", str(inp), "--out", str(prefix)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"visiond forward exited {proc.returncode}: {proc.stderr.strip()}")
    heads = []
    for h in json.loads(proc.stdout.strip().splitlines()[-1])["heads"]:
        data = np.fromfile(h["file"], dtype="<f4")
        if data.size != h["rows"] * h["cols"]:
            raise RuntimeError(f"{h['file']}: {data.size} floats, header says {h['rows']}x{h['cols']}")
        heads.append((h["layer"], data.reshape(h["rows"], h["cols"])))
    return heads


# ---- comparing one head --------------------------------------------------------------------------------------

def grid_of(rows, anchors, width, height):
    """(grid_h, grid_w) of a head from its row count; the grid has the network input's aspect ratio."""
    cells = rows // anchors
    gh = int(round((cells * height / width) ** 0.5))
    return gh, cells // gh


LAYOUTS = {
    # name -> how a buffer in that layout is viewed, and the transpose that brings it to (y, x, anchor, col)
    "cell-major": ("hwac", (0, 1, 2, 3)),    # (y*W + x)*A + a: OpenCV's and the contract's
    "anchor-major": ("ahwc", (1, 2, 0, 3)),  # (a*H + y)*W + x: darknet's own output order
    "x-major": ("whac", (1, 0, 2, 3)),       # (x*H + y)*A + a: grid transposed
}


def in_layout(ours, layout, anchors, gh, gw):
    """Reorder ours, assumed to be in `layout`, into OpenCV's row order."""
    order, axes = LAYOUTS[layout]
    dims = {"h": gh, "w": gw, "a": anchors, "c": ours.shape[1]}
    return ours.reshape([dims[k] for k in order]).transpose(axes).reshape(ours.shape)


def best_layout(ours, ref, anchors, gh, gw):
    """The row layout that makes box and objectness columns (untouched by thresholds) closest to OpenCV's."""
    errs = {}
    for name in LAYOUTS:
        if name != "cell-major" and gh == gw == 1:
            continue
        d = in_layout(ours, name, anchors, gh, gw)[:, :5] - ref[:, :5]
        errs[name] = np.linalg.norm(d) / max(np.linalg.norm(ref[:, :5]), 1e-30)
    return min(errs, key=errs.get)


def nms_suppress(rows, scores, thresh, nms):
    """OpenCV's in-layer NMS of [region]: per class, keep what cv2.dnn.NMSBoxes keeps, zero the rest."""
    boxes = [(float(x - w / 2), float(y - h / 2), float(w), float(h)) for x, y, w, h in rows[:, :4]]
    out = np.zeros_like(scores)
    for k in range(scores.shape[1]):
        if not (scores[:, k] > thresh).any():
            continue
        keep = np.asarray(cv2.dnn.NMSBoxes(boxes, scores[:, k].tolist(), thresh, nms), dtype=int).reshape(-1)
        out[keep, k] = scores[keep, k]
    return out


def iou_xywh(a, b):
    ax1, ay1, bx1, by1 = a[0] - a[2] / 2, a[1] - a[3] / 2, b[0] - b[2] / 2, b[1] - b[3] / 2
    iw = max(0.0, min(ax1 + a[2], bx1 + b[2]) - max(ax1, bx1))
    ih = max(0.0, min(ay1 + a[3], by1 + b[3]) - max(ay1, by1))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def nms_borderline(rows, scores_t, i, k, nms, thresh):
    """True if row i's NMS fate in class k hinges on float noise: a rival of the same class overlaps it with an
    IoU within THRESH_BAND of the NMS threshold, or overlaps it above the threshold with a score within
    band(score threshold) (so the two sides may order them differently)."""
    for j in np.nonzero(scores_t[:, k])[0]:
        if j == i:
            continue
        ov = iou_xywh(rows[i, :4], rows[j, :4])
        if abs(ov - nms) <= THRESH_BAND or (ov > nms and abs(scores_t[i, k] - scores_t[j, k]) <= band(thresh)):
            return True
    return False


def band(thresh):
    """THRESH_BAND, but never more than a tenth of the threshold itself (yolov2-tiny@thresh.001)."""
    return min(THRESH_BAND, 0.1 * thresh)


def compare_head(ours_raw, ref, spec, width, height):
    """Returns dict(max_abs, rel, stepped, layout, error) for one head."""
    if ours_raw.shape != ref.shape:
        return dict(error=f"shape {ours_raw.shape}, OpenCV {ref.shape}")
    gh, gw = grid_of(ref.shape[0], spec["anchors"], width, height)
    layout = best_layout(ours_raw, ref, spec["anchors"], gh, gw)
    t = spec["thresh"]
    raw_cls, ref_cls = ours_raw[:, 5:], ref[:, 5:]
    ours_cls = np.where(raw_cls > t, raw_cls, 0).astype(np.float32)
    # A class score is the same quantity on both sides, with a step to 0 at t. Where either side's value lies
    # within THRESH_BAND of t, float noise may put the two on different sides of the step: accept either
    # value there (take OpenCV's). This is not a looser tolerance: away from t both must agree as usual.
    near = (np.abs(raw_cls - t) <= band(t)) | ((ref_cls > 0) & (np.abs(ref_cls - t) <= band(t)))
    if spec["nms"] > 0:
        ours_cls = nms_suppress(ours_raw, ours_cls, t, spec["nms"])
        # Same idea for the in-layer NMS: a kept/suppressed flip is accepted only when it is borderline.
        flips = np.argwhere((ours_cls > 0) != (ref_cls > 0))
        pre = np.where(raw_cls > t, raw_cls, 0)
        for i, k in flips:
            if nms_borderline(ours_raw, pre, i, k, spec["nms"], t):
                near[i, k] = True
    stepped = near & ((ours_cls > 0) != (ref_cls > 0))
    ours_cls = np.where(stepped, ref_cls, ours_cls)
    ours = np.concatenate([ours_raw[:, :5], ours_cls], axis=1)
    diff = np.abs(ours - ref)
    return dict(max_abs=float(diff.max()), rel=float(np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-30)),
                stepped=int(stepped.sum()), layout=layout, error=None)


# ---- the test cases --------------------------------------------------------------------------------------------

def low_thresh_cfg(cfg, tmp):
    """A copy of a [region] cfg with thresh=.001 (darknet_io's default), in tmp.

    With yolov2-tiny's own thresh=.6, no class score of random weights (objectness * a softmax over 80 classes)
    reaches the threshold, so OpenCV's output has no class scores at all; at .001 tens of thousands survive the
    threshold and the in-layer NMS, which tests our softmax and both rules for real.
    """
    out = tmp / (cfg.stem + "-thresh.001.cfg")
    lines = [("thresh=.001\n" if ln.replace(" ", "").startswith("thresh=") else ln) for ln in open(cfg)]
    out.write_text("".join(lines))
    return out


def cases(tmp, only):
    """(model, cfg, weights, image, is_real) for every comparison; random weights are generated into tmp."""
    out = []
    for m in REAL_MODELS:
        d = SHARED / "models" / m
        out += [(m, d / f"{m}.cfg", d / f"{m}.weights", img, True) for img in IMAGES]
    for m in RANDOM_MODELS:
        if only and m not in only:
            continue
        cfg, weights = SHARED / "models" / "cfg" / f"{m}.cfg", tmp / f"{m}.weights"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-random-weights"), str(cfg), str(weights),
                        "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        out.append((m, cfg, weights, SHARED / "images" / "dog.jpg", False))
        if m == "yolov2-tiny":
            out.append((m + "@thresh.001", low_thresh_cfg(cfg, tmp), weights, SHARED / "images" / "dog.jpg", False))
    return [c for c in out if not only or c[0].split("@")[0] in only]


def run_case(visiond, model, cfg, weights, image, real, tmp, nets):
    """One row per head: (model, image, head, shape, result dict, pass)."""
    width, height = net_size(cfg)
    blob = make_blob(image, width, height)
    if model not in nets:
        nets[model] = load_opencv(cfg, weights)
    refs = run_opencv(nets[model], blob)
    specs = head_specs(cfg)
    try:
        ours = run_visiond(visiond, cfg, weights, blob, tmp)
        if len(ours) != len(refs) or len(specs) != len(refs):
            raise RuntimeError(f"{len(ours)} heads from visiond, {len(refs)} from OpenCV, {len(specs)} in cfg")
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        return [(model, image.name, "-", "-", dict(error=str(e)), False)]
    rows = []
    for k, ((layer, o), ref, spec) in enumerate(zip(ours, refs, specs)):
        r = compare_head(o, ref, spec, width, height)
        if r["error"]:
            ok = False
        elif real:
            ok = r["max_abs"] <= REAL_MAX_ABS
        else:
            ok = r["rel"] <= RANDOM_REL
        rows.append((model, image.name, f"{k}:{spec['kind']}@{layer}", "x".join(map(str, ref.shape)), r, ok))
    return rows


def print_table(rows):
    print(f"{'model':<22} {'image':<12} {'head':<14} {'shape':<9} {'max abs':>10} {'rel err':>10} "
          f"{'at thresh':>9} {'layout':<12} result")
    for model, image, head, shape, r, ok in rows:
        if r.get("error"):
            print(f"{model:<22} {image:<12} {head:<14} {shape:<9} {'':>10} {'':>10} {'':>9} {'':<12} "
                  f"FAIL: {r['error']}")
            continue
        print(f"{model:<22} {image:<12} {head:<14} {shape:<9} {r['max_abs']:10.3g} {r['rel']:10.3g} "
              f"{r['stepped']:9d} {r['layout']:<12} {'pass' if ok else 'FAIL'}")


def main():
    ap = argparse.ArgumentParser(description="visiond forward vs OpenCV DNN, raw head outputs")
    ap.add_argument("--visiond", required=True, help="path of the visiond binary")
    ap.add_argument("--only", default="", help="comma-separated model names to run (default: all)")
    args = ap.parse_args()
    visiond = pathlib.Path(args.visiond).resolve()
    if not visiond.is_file():
        sys.exit(f"FAIL: no visiond at {visiond}")
    if not IMAGES:
        sys.exit(f"FAIL: no images under {SHARED / 'images'} (run from the project root)")
    only = [m for m in args.only.split(",") if m]

    rows, nets = [], {}
    with tempfile.TemporaryDirectory(prefix="visiond-ref-") as tmp:
        tmp = pathlib.Path(tmp)
        for model, cfg, weights, image, real in cases(tmp, only):
            rows += run_case(visiond, model, cfg, weights, image, real, tmp, nets)
    print_table(rows)
    print(f"criteria: real models max abs <= {REAL_MAX_ABS:g}; random models rel err <= {RANDOM_REL:g}; "
          f"'at thresh' = class scores within {THRESH_BAND:g} (at most thresh/10) of a step "
          f"(score threshold or NMS) taken from OpenCV; 'layout' = row order of ours that best fits OpenCV "
          f"(should be cell-major)")
    failed = [r for r in rows if not r[5]]
    if any(r[4].get("layout", "cell-major") != "cell-major" for r in rows):
        print("NOTE: some heads fit OpenCV better in another row order: see the layout column")
    print(f"{len(rows) - len(failed)}/{len(rows)} heads pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
