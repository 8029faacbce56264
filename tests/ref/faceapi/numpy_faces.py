#!/usr/bin/python3
"""docs/FACES.md as code: face-api's three networks, pre- and post-processing re-implemented in plain numpy from
the facts written there, checked against face-api itself (run-reference's JSON).

    tests/ref/faceapi/numpy_faces.py --ref REF.json [--models DIR]

REF.json: run-reference output made with --raw (detector grid and landmark outputs are compared too). Every photo
and aligned crop in it is recomputed here and compared: detector raw grid, boxes and scores, landmarks, the
aligned chip rectangle, descriptors. Prints a summary; exit 0 when everything agrees within the issue's
tolerances, 1 if not, 77 without cv2/numpy. Slow-ish (plain numpy, about a second a face) and independent of
TF.js: a second reading of face-api's source, so the facts the C engine follows are themselves tested.
"""
import argparse
import json
import math
import pathlib
import sys

try:
    import cv2
    import numpy as np
except ImportError:
    print("SKIP: python3-opencv / python3-numpy not installed for /usr/bin/python3")
    sys.exit(77)

F32 = np.float32
ROOT = pathlib.Path(__file__).resolve().parents[3]


# ---- weights ---------------------------------------------------------------------------------------------------
def load_manifest(models, name):
    """{tensor name: float32 array} of one TF.js model: uint8/uint16 values are float32(q * scale + min)."""
    groups = json.loads((models / f"{name}-weights_manifest.json").read_text())
    out = {}
    for group in groups:
        data = b"".join((models / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            n = math.prod(w["shape"])
            q = w.get("quantization")
            if q:
                dt = {"uint8": np.uint8, "uint16": np.dtype("<u2")}[q["dtype"]]
                raw = np.frombuffer(data, dt, n, pos)
                pos += n * raw.itemsize
                vals = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(F32)
            else:
                vals = np.frombuffer(data, "<f4", n, pos).astype(F32)
                pos += 4 * n
            out[w["name"]] = vals.reshape(w["shape"])
        if pos != len(data):
            raise ValueError(f"{name}: {len(data) - pos} bytes left over")
    return out


# ---- ops (NHWC, one image: H x W x C, float32) -------------------------------------------------------------------
def same_pad(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad_hw(x, top, bottom, left, right, value=0.0):
    return np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=value)


def patches(x, k, s):
    """View (oh, ow, k, k, C) of k x k windows with stride s over an already padded x."""
    h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    st = x.strides
    return np.lib.stride_tricks.as_strided(x, (oh, ow, k, k, c), (st[0] * s, st[1] * s, st[0], st[1], st[2]))


def tf_pad(x, k, s, padding):
    if padding == "valid":
        return x
    t, b = same_pad(x.shape[0], k, s)
    l, r = same_pad(x.shape[1], k, s)
    return pad_hw(x, t, b, l, r)


def conv(x, w, s=1, padding="same"):
    k = w.shape[0]
    p = patches(np.ascontiguousarray(tf_pad(x, k, s, padding)), k, s)
    oh, ow = p.shape[:2]
    return (p.reshape(oh * ow, -1) @ w.reshape(-1, w.shape[3])).reshape(oh, ow, -1).astype(F32)


def depthwise(x, w, s=1, padding="same"):
    k = w.shape[0]
    p = patches(np.ascontiguousarray(tf_pad(x, k, s, padding)), k, s)
    return np.einsum("hwijc,ijc->hwc", p, w[:, :, :, 0], dtype=F32)


def separable(x, dw, pw, bias, s=1, padding="same"):
    return (conv(depthwise(x, dw, s, padding), pw, 1, "valid") + bias).astype(F32)


def max_pool(x, k, s, padding):
    if padding == "same":
        t, b = same_pad(x.shape[0], k, s)
        l, r = same_pad(x.shape[1], k, s)
        x = pad_hw(x, t, b, l, r, -np.inf)
    return patches(np.ascontiguousarray(x), k, s).max(axis=(2, 3))


def avg_pool_valid(x, k, s):
    return patches(np.ascontiguousarray(x), k, s).mean(axis=(2, 3), dtype=F32)


def relu(x):
    return np.maximum(x, F32(0))


def leaky(x):
    return np.where(x > 0, x, x * F32(0.1)).astype(F32)


def pad_to_square(img, center):
    """padToSquare: zeros on the short side, all after the image, or round(d/2) after and the rest before."""
    h, w = img.shape[:2]
    d = abs(h - w)
    after = d if not center else math.floor(d * 0.5 + 0.5)
    before = d - after
    if h > w:
        return pad_hw(img, 0, 0, before, after)
    return pad_hw(img, before, after, 0, 0)


def resize_bilinear(img, size):
    """tf.image.resizeBilinear(alignCorners=false, halfPixelCenters=false): src = dst * in / out."""
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img.astype(F32)

    def axis(n_in):
        src = np.arange(size) * (n_in / size)
        lo = np.maximum(np.floor(src), 0).astype(int)
        hi = np.minimum(np.ceil(src), n_in - 1).astype(int)
        return lo, hi, src - lo

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    x = img.astype(np.float64)
    fx = fx[None, :, None]
    top = x[y0][:, x0] + (x[y0][:, x1] - x[y0][:, x0]) * fx
    bot = x[y1][:, x0] + (x[y1][:, x1] - x[y1][:, x0]) * fx
    return (top + (bot - top) * fy[:, None, None]).astype(F32)


def normalize(x, mean):
    return ((x - np.array(mean, F32)) / F32(255)).astype(F32)


# ---- tiny face detector ----------------------------------------------------------------------------------------
ANCHORS = [(1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857),
           (9.041765, 10.66308)]


def detector_grid(P, img, size):
    x = normalize(resize_bilinear(pad_to_square(img.astype(F32), center=False), size), [117.001, 114.697, 97.404])
    x = leaky(conv(x, P["conv0/filters"], 1, "valid") + P["conv0/bias"])
    x = max_pool(x, 2, 2, "same")
    for i in range(1, 6):
        x = pad_hw(x, 1, 1, 1, 1)
        x = leaky(separable(x, P[f"conv{i}/depthwise_filter"], P[f"conv{i}/pointwise_filter"], P[f"conv{i}/bias"],
                            1, "valid"))
        x = max_pool(x, 2, 2 if i < 5 else 1, "same")
    return (conv(x, P["conv8/filters"], 1, "valid") + P["conv8/bias"]).astype(F32)


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def detect(P, img, size, thr, iou_thr=0.4):
    h, w = img.shape[:2]
    grid = detector_grid(P, img, size)
    n = grid.shape[0]
    scale = size / max(h, w)
    rw, rh = math.floor(w * scale + 0.5), math.floor(h * scale + 0.5)
    cands = []
    for row in range(n):
        for col in range(n):
            for a, (aw, ah) in enumerate(ANCHORS):
                tx, ty, tw, th, obj = (float(v) for v in grid[row, col, a * 5:a * 5 + 5])
                score = sigmoid(obj)
                if score <= thr:
                    continue
                cx = (col + sigmoid(tx)) / n * size / rw * w
                cy = (row + sigmoid(ty)) / n * size / rh * h
                bw = math.exp(tw) * aw / n * size / rw * w
                bh = math.exp(th) * ah / n * size / rh * h
                cands.append((score, (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)))
    order = sorted(range(len(cands)), key=lambda i: cands[i][0])  # stable, ascending; picks from the end
    picks = []
    while order:
        cur = order.pop()
        picks.append(cands[cur])
        order = [i for i in order if iou(cands[cur][1], cands[i][1]) <= iou_thr]
    return grid, picks


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def clip_at_borders(x, y, w, h, img_w, img_h):
    """Box.clipAtImageBorders: clip the top-left, then width/height, then floor each of x, y, w, h."""
    cx, cy = max(x, 0), max(y, 0)
    cw, ch = min(x + w - cx, img_w - cx), min(y + h - cy, img_h - cy)
    return math.floor(cx), math.floor(cy), math.floor(cw), math.floor(ch)


# ---- landmarks -------------------------------------------------------------------------------------------------
def dense_block(P, x, prefix, first):
    if first:
        out1 = relu(conv(x, P[f"{prefix}/conv0/filters"], 2, "same") + P[f"{prefix}/conv0/bias"])
    else:
        out1 = relu(separable(x, P[f"{prefix}/conv0/depthwise_filter"], P[f"{prefix}/conv0/pointwise_filter"],
                              P[f"{prefix}/conv0/bias"], 2, "same"))

    def sep(i, v):
        return separable(v, P[f"{prefix}/conv{i}/depthwise_filter"], P[f"{prefix}/conv{i}/pointwise_filter"],
                         P[f"{prefix}/conv{i}/bias"], 1, "same")

    out2 = sep(1, out1)
    out3 = sep(2, relu(out1 + out2))
    out4 = sep(3, relu(out1 + (out2 + out3)))
    return relu(out1 + (out2 + (out3 + out4)))


def landmarks_rel(P, crop):
    x = normalize(resize_bilinear(pad_to_square(crop.astype(F32), center=True), 112), [122.782, 117.001, 104.298])
    for i in range(4):
        x = dense_block(P, x, f"dense{i}", i == 0)
    x = avg_pool_valid(x, 7, 2).reshape(-1)
    out = (x @ P["fc/weights"] + P["fc/bias"]).astype(np.float64)
    h, w = crop.shape[:2]
    s = 112 / max(h, w)
    pad_x = abs(w - h) * s / 2 if w < h else 0.0
    pad_y = abs(w - h) * s / 2 if h < w else 0.0
    rx = (out[0::2] * 112 - pad_x) / (w * s)
    ry = (out[1::2] * 112 - pad_y) / (h * s)
    return np.stack([rx, ry], axis=1)


def align_dlib(pts, crop_w, crop_h):
    left, right, mouth = pts[36:42].mean(0), pts[42:48].mean(0), pts[48:68].mean(0)
    d = (np.linalg.norm(mouth - left) + np.linalg.norm(mouth - right)) / 2
    size = math.floor(d / 0.45)
    c = (left + right + mouth) / 3
    x = math.floor(max(0.0, c[0] - 0.5 * size))
    y = math.floor(max(0.0, c[1] - 0.43 * size))
    return x, y, min(size, crop_w + x), min(size, crop_h + y)


# ---- recognition -----------------------------------------------------------------------------------------------
def conv_scale(P, x, prefix, stride, padding, with_relu):
    y = conv(x, P[f"{prefix}/conv/filters"], stride, padding) + P[f"{prefix}/conv/bias"]
    y = (y * P[f"{prefix}/scale/weights"] + P[f"{prefix}/scale/biases"]).astype(F32)
    return relu(y) if with_relu else y


def residual(P, x, prefix):
    out = conv_scale(P, x, f"{prefix}/conv1", 1, "same", True)
    out = conv_scale(P, out, f"{prefix}/conv2", 1, "same", False)
    return relu(out + x)


def residual_down(P, x, prefix):
    out = conv_scale(P, x, f"{prefix}/conv1", 2, "valid", True)
    out = conv_scale(P, out, f"{prefix}/conv2", 1, "same", False)
    pooled = avg_pool_valid(x, 2, 2)
    if pooled.shape[:2] != out.shape[:2]:
        out = pad_hw(out, 0, 1, 0, 1)
    if pooled.shape[2] != out.shape[2]:
        pooled = np.concatenate([pooled, np.zeros_like(pooled)], axis=2)
    return relu(pooled + out)


def descriptor(P, chip):
    x = normalize(resize_bilinear(pad_to_square(chip.astype(F32), center=True), 150), [122.782, 117.001, 104.298])
    x = conv_scale(P, x, "conv32_down", 2, "valid", True)
    x = max_pool(x, 3, 2, "valid")
    for name in ["conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2", "conv64_3",
                 "conv128_down", "conv128_1", "conv128_2", "conv256_down", "conv256_1", "conv256_2",
                 "conv256_down_out"]:
        x = residual_down(P, x, name) if name.endswith("down") or name.endswith("down_out") else residual(P, x, name)
    return (x.mean(axis=(0, 1), dtype=F32) @ P["fc"]).astype(np.float64)


# ---- check -----------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="run-reference output (made with --raw)")
    ap.add_argument("--models", default=str(ROOT / "models" / "faces"))
    args = ap.parse_args()
    ref = json.loads(pathlib.Path(args.ref).read_text())
    models = pathlib.Path(args.models)
    det = load_manifest(models, "tiny_face_detector_model")
    lmk = load_manifest(models, "face_landmark_68_model")
    rec = load_manifest(models, "face_recognition_model")
    size, thr = ref["input_size"], ref["det_threshold"]
    bad = 0

    def check(ok, what):
        nonlocal bad
        if not ok:
            bad += 1
            print("  FAIL", what)

    for photo in ref["photos"]:
        img = cv2.cvtColor(cv2.imread(photo["image"], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        H, W = img.shape[:2]
        grid, picks = detect(det, img, size, thr)
        line = f"{photo['image']}: {len(picks)} faces (face-api {photo['count']})"
        if "det_raw" in photo:
            line += f", raw grid max |diff| {np.abs(grid.reshape(-1) - np.array(photo['det_raw'])).max():.2e}"
        print(line)
        check(len(picks) == photo["count"], "face count")
        for (score, box), f in zip(picks, photo["faces"]):
            fb = f["box"]
            o = iou(box, (fb["x1"], fb["y1"], fb["x2"], fb["y2"]))
            x, y, w, h = clip_at_borders(box[0], box[1], box[2] - box[0], box[3] - box[1], W, H)
            rel = landmarks_rel(lmk, img[y:y + h, x:x + w])
            pts = rel * [w, h] + [box[0], box[1]]
            lm_err = np.linalg.norm(pts - np.array(f["landmarks"]), axis=1).mean()
            chip = clip_at_borders(*align_dlib(pts, w, h), W, H)
            cx, cy, cw, ch = chip
            d = descriptor(rec, img[cy:cy + ch, cx:cx + cw])
            d_err = np.linalg.norm(d - np.array(f["descriptor"]))
            fc = f["aligned_chip"]
            print(f"  score {score:.6f} ({f['det_score']:.6f}) IoU {o:.6f} landmarks {lm_err:.4f} px "
                  f"chip {chip} ({fc['x']}, {fc['y']}, {fc['width']}, {fc['height']}) descriptor {d_err:.2e}")
            check(o >= 0.999 and abs(score - f["det_score"]) <= 1e-4, "box/score")
            check((x, y, w, h) == tuple(f["landmark_crop"][k] for k in ("x", "y", "width", "height")),
                  "landmark crop")
            check(lm_err <= 0.01, "landmarks")
            check(chip == (fc["x"], fc["y"], fc["width"], fc["height"]), "aligned chip")
            check(d_err <= 1e-3, "end-to-end descriptor")
    worst = 0.0
    for crop in ref["aligned"]:
        img = cv2.cvtColor(cv2.imread(crop["image"], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        err = np.linalg.norm(descriptor(rec, img) - np.array(crop["descriptor"]))
        worst = max(worst, err)
        check(err <= 1e-3, f"aligned descriptor {crop['image']}: {err:.2e}")
    if ref["aligned"]:
        print(f"aligned crops: {len(ref['aligned'])}, worst descriptor distance {worst:.2e}")
    print("numpy_faces: OK" if not bad else f"numpy_faces: {bad} FAILED")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
