#!/usr/bin/python3
"""Integration tests of `visiond serve` over HTTP (issue 3, acceptance 1).

Starts the real daemon on an ephemeral port on 127.0.0.1 (tests/ref/daemon.py) and calls every endpoint
in every input form, validating each JSON body against the response schema of proto/openapi.yaml for
that path, method and status, and requiring an X-Request-Id header on every answer:

  detect     POST /v1/detect for all six ../shared/images/*.jpg as a raw image/jpeg body, as multipart
             (file field `image`) and as JSON base64, plus PNG bodies (made with cv2), a JSON data: URI,
             URL-safe base64, a chunked upload and a raw body without Content-Type or labelled
             urlencoded (`curl --data-binary` style): the detections equal
             `visiond detect`'s (same binary, --models-dir models, default model) for the same file,
             exactly (class_id, label, confidence, box).
  params     model, conf, iou, agnostic_nms, max_det, classes (names, ids, JSON array), exif (a JPEG
             given an EXIF orientation here), timeout_ms and X-Timeout-Ms, as query string, multipart
             fields and JSON members: each answer equals `visiond detect` with the matching flags, and
             the flags do change the answer where they should.
  deepstack  POST /v1/vision/detection (multipart image + min_confidence) for all six images: the
             predictions are the CLI's detections in DeepStack's shape (whole pixels).
  endpoints  GET /v1/models (the models in ./models, the default, classes, input size, thresholds),
             /healthz and /readyz (also HEAD), /openapi.json (= proto/openapi.json), OPTIONS.
  request-id a safe client X-Request-Id is echoed (header, body, log line); an unsafe one is replaced.
  cors       --cors http://example.test: preflight OPTIONS answered with the allow-headers; the
             Access-Control-Allow-Origin header only for the allowed origin, on errors too.
  metrics    GET /metrics is Prometheus text with requests by route and status, queue and inference
             histograms (consistent buckets), queue depth, busy workers, RSS bytes; counts add up.
  keys       a second daemon with --keys FILE bound to 0.0.0.0: 401 without or with a wrong key, 200
             with `Authorization: Bearer`, `X-API-Key` and DeepStack's form field `api_key`;
             /healthz and /readyz need no key; the key never appears in the log; a key shorter than
             16 characters stops the daemon at start without echoing it.
  bind       a non-loopback --bind (flag or VISIOND_BIND) without keys refuses to start, saying why.
  config     `visiond serve --print-config` shows each value and its source (default, file:line, env,
             flag) with flags > environment > file; an unknown key in the file is fatal with file:line.
  Every daemon exits 0 on SIGTERM.

usage: test_http_api.py --visiond build/visiond   (run from the project root, as ctest does)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without python3-opencv/-yaml/-jsonschema or models.
"""
import argparse
import base64
import json
import math
import pathlib
import re
import struct
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

try:
    import cv2
    import jsonschema  # noqa: F401
    import numpy as np  # noqa: F401
    import yaml  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (needs Debian's python3-opencv, python3-yaml, python3-jsonschema: /usr/bin/python3)")
    sys.exit(77)

ROOT = daemon.ROOT
IMAGES = sorted((daemon.SHARED / "images").glob("*.jpg"))
MODELS_DIR = ROOT / "models"
DEFAULT_MODEL = "yolo-fastest-1.1-xl"
SMALL_MODEL = "yolo-fastest-1.1"
ALLOWED_ORIGIN = "http://example.test"
API_KEY = "test-key-3f9a1c77e2b54d08"
ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Ctx:
    def __init__(self, visiond):
        self.visiond = visiond
        self.c = daemon.Checks()
        self.api = daemon.OpenApi()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="visiond-http-api-"))
        self.counts = {}  # (route name, status) -> requests sent to the main daemon

    def expect(self, group, r, method, path, status, what="", route=None):
        """Checks status, X-Request-Id and (for JSON) the body against the OpenAPI schema. Returns the
        parsed body (or None). Counts the request for the metrics check when `route` is given."""
        c = self.c
        label = f"{method} {path} {what}".strip()
        if route:
            self.counts[(route, r.status)] = self.counts.get((route, r.status), 0) + 1
        c.check(group, r.status == status, f"{label}: status {status}", f"got {r!r}")
        rid = r.header("X-Request-Id")
        c.check(group, rid is not None and ID_RE.match(rid) is not None,
                f"{label}: X-Request-Id header present and well-formed", f"got {rid!r}")
        ctype = (r.header("Content-Type") or "").split(";")[0].strip()
        if method == "HEAD" or r.status == 204:
            return None
        if ctype != "application/json":
            return None
        try:
            body = r.json()
        except ValueError as e:
            c.check(group, False, f"{label}: body is JSON", str(e))
            return None
        problems = self.api.validate(path.split("?")[0], method, r.status, body)
        c.check(group, not problems, f"{label}: body matches proto/openapi.yaml", "; ".join(problems[:3]))
        if isinstance(body, dict) and "request_id" in body:
            c.check(group, body["request_id"] == rid, f"{label}: request_id in the body is the header's",
                    f"{body['request_id']!r} vs {rid!r}")
        return body


# ---- the CLI as the reference ----------------------------------------------------------------------

def cli_detect(ctx, images, *flags):
    """`visiond detect --models-dir models FLAGS IMAGES...` -> one dict per image."""
    p = daemon.run_visiond(ctx.visiond, "detect", "--models-dir", "models", *flags, *map(str, images))
    docs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    if p.returncode != 0 or len(docs) != len(images):
        raise RuntimeError(f"visiond detect {flags} failed ({p.returncode}): {p.stderr}")
    return docs


def same_detections(c, group, what, got, want):
    """Exact equality of two detection lists (class_id, label, confidence, box)."""
    if got == want:
        return c.check(group, True, what)
    detail = f"{len(got)} vs CLI {len(want)}"
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            detail += f"; first difference at [{i}]: {a} vs CLI {b}"
            break
    return c.check(group, False, f"{what}: detections equal visiond detect's", detail)


def check_detect_body(ctx, group, what, body, cli_doc, model=DEFAULT_MODEL, exif_rotated=False):
    c = ctx.c
    if body is None:
        c.check(group, False, f"{what}: a JSON body")
        return
    same_detections(c, group, f"{what}: detections equal visiond detect's", body["detections"],
                    cli_doc["detections"])
    c.check(group, body["count"] == len(body["detections"]), f"{what}: count is the number of detections")
    c.check(group, body["model"]["name"] == model, f"{what}: model is {model}", str(body["model"]))
    c.check(group, (body["image"]["width"], body["image"]["height"]) == (cli_doc["width"], cli_doc["height"]),
            f"{what}: image size is the CLI's", f"{body['image']} vs {cli_doc['width']}x{cli_doc['height']}")
    c.check(group, body["image"]["exif_rotated"] == exif_rotated, f"{what}: exif_rotated {exif_rotated}")


def net_size(model):
    size, in_net = {}, False
    for raw in open(MODELS_DIR / model / f"{model}.cfg", encoding="utf-8"):
        line = raw.split("#", 1)[0].replace(" ", "").strip()
        if line.startswith("["):
            in_net = line in ("[net]", "[network]")
        elif in_net and "=" in line:
            k, v = line.split("=", 1)
            size[k] = v
    return int(size["width"]), int(size["height"])


def with_exif_orientation(jpeg, orientation):
    """The JPEG with an APP1 Exif segment (little-endian TIFF, one IFD entry: Orientation) after SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    tiff = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) +
            struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", orientation, 0) + struct.pack("<I", 0))
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


# ---- the main daemon --------------------------------------------------------------------------------

def test_detect_forms(ctx, d):
    """Every image in every input form equals the CLI."""
    g = "detect"
    cli = {p.name: doc for p, doc in zip(IMAGES, cli_detect(ctx, IMAGES))}
    for img in IMAGES:
        data = img.read_bytes()
        name = img.name
        r = d.post_raw("/v1/detect", data, "image/jpeg")
        check_detect_body(ctx, g, f"{name} raw image/jpeg",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, name, route="detect"), cli[name])
        r = d.post_multipart("/v1/detect", [("image", (name, data, "image/jpeg"))])
        check_detect_body(ctx, g, f"{name} multipart",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, name, route="detect"), cli[name])
        r = d.post_json("/v1/detect", {"image_b64": base64.b64encode(data).decode()})
        check_detect_body(ctx, g, f"{name} JSON image_b64",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, name, route="detect"), cli[name])

    dog = daemon.SHARED / "images" / "dog.jpg"
    data = dog.read_bytes()
    r = d.post_json("/v1/detect", {"image_b64": "data:image/jpeg;base64," + base64.b64encode(data).decode(),
                                   "conf": 0.25})
    check_detect_body(ctx, g, "dog.jpg JSON data: URI",
                      ctx.expect(g, r, "POST", "/v1/detect", 200, "data: URI", route="detect"), cli["dog.jpg"])
    r = d.post_json("/v1/detect", {"image_b64": base64.urlsafe_b64encode(data).decode().rstrip("=")})
    check_detect_body(ctx, g, "dog.jpg JSON URL-safe base64 without padding",
                      ctx.expect(g, r, "POST", "/v1/detect", 200, "url-safe b64", route="detect"),
                      cli["dog.jpg"])
    r = d.post_raw("/v1/detect", data, "image/jpeg", headers={"Transfer-Encoding": "chunked"})
    check_detect_body(ctx, g, "dog.jpg raw body, chunked (no Content-Length)",
                      ctx.expect(g, r, "POST", "/v1/detect", 200, "chunked", route="detect"), cli["dog.jpg"])
    r = d.post_raw("/v1/detect", data, None)
    check_detect_body(ctx, g, "dog.jpg raw body without Content-Type",
                      ctx.expect(g, r, "POST", "/v1/detect", 200, "no Content-Type", route="detect"),
                      cli["dog.jpg"])
    r = d.post_raw("/v1/detect", data, "application/x-www-form-urlencoded")
    check_detect_body(ctx, g, "dog.jpg raw body labelled urlencoded (curl --data-binary)",
                      ctx.expect(g, r, "POST", "/v1/detect", 200, "urlencoded", route="detect"), cli["dog.jpg"])

    # PNG bodies, compared with the CLI on the same PNG file.
    pngs = []
    for src in (dog, daemon.SHARED / "images" / "horses.jpg"):
        ok, enc = cv2.imencode(".png", cv2.imread(str(src), cv2.IMREAD_COLOR))
        path = ctx.tmp / (src.stem + ".png")
        path.write_bytes(enc.tobytes())
        pngs.append(path)
    for path, doc in zip(pngs, cli_detect(ctx, pngs)):
        data = path.read_bytes()
        r = d.post_raw("/v1/detect", data, "image/png")
        check_detect_body(ctx, g, f"{path.name} raw image/png",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, path.name, route="detect"), doc)
        r = d.post_multipart("/v1/detect", [("image", (path.name, data, "image/png"))])
        check_detect_body(ctx, g, f"{path.name} multipart PNG",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, path.name, route="detect"), doc)
        r = d.post_json("/v1/detect", {"image_b64": "data:image/png;base64," + base64.b64encode(data).decode()})
        check_detect_body(ctx, g, f"{path.name} JSON PNG data: URI",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, path.name, route="detect"), doc)


def test_params(ctx, d):
    """Each parameter in each form equals the CLI with the matching flag, and changes the answer."""
    g = "params"
    c = ctx.c
    dog = daemon.SHARED / "images" / "dog.jpg"
    horses = daemon.SHARED / "images" / "horses.jpg"
    person = daemon.SHARED / "images" / "person.jpg"
    dog_b, horses_b, person_b = dog.read_bytes(), horses.read_bytes(), person.read_bytes()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    base = {p.name: doc for p, doc in zip([dog, horses, person], cli_detect(ctx, [dog, horses, person]))}

    def run(what, r, cli_doc, model=DEFAULT_MODEL, exif_rotated=False):
        body = ctx.expect(g, r, "POST", "/v1/detect", 200, what, route="detect")
        check_detect_body(ctx, g, what, body, cli_doc, model=model, exif_rotated=exif_rotated)
        return body

    # model
    small = cli_detect(ctx, [dog], "--model", SMALL_MODEL)[0]
    c.check(g, small["detections"] != base["dog.jpg"]["detections"], "the two models answer differently")
    body = run("model= query", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"model": SMALL_MODEL}),
               small, model=SMALL_MODEL)
    if body:
        c.check(g, body["model"]["input"] == dict(zip(("width", "height"), net_size(SMALL_MODEL))),
                "model.input is the cfg's [net] size", str(body["model"]))
    run("model multipart field", d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg")),
                                                                 ("model", SMALL_MODEL)]), small, model=SMALL_MODEL)
    run("model JSON", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "model": SMALL_MODEL}), small,
        model=SMALL_MODEL)
    run("model JSON null = default", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "model": None}),
        base["dog.jpg"])

    # conf
    conf = cli_detect(ctx, [dog], "--conf", "0.5")[0]
    c.check(g, len(conf["detections"]) < len(base["dog.jpg"]["detections"]), "conf 0.5 drops detections")
    run("conf=0.5 query", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"conf": 0.5}), conf)
    run("conf=0.5 multipart", d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg")),
                                                              ("conf", "0.5")]), conf)
    run("conf=0.5 JSON", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "conf": 0.5}), conf)
    run("conf=0.5 query with a multipart body",
        d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg"))], query={"conf": "0.5"}), conf)
    low = cli_detect(ctx, [person], "--conf", "0.05")[0]
    run("conf=0.05 query (person.jpg)", d.post_raw("/v1/detect", person_b, "image/jpeg", query={"conf": 0.05}),
        low)

    # iou
    iou = cli_detect(ctx, [horses], "--iou", "0.1", "--conf", "0.1")[0]
    run("iou=0.1 multipart (horses.jpg)",
        d.post_multipart("/v1/detect", [("image", ("h.jpg", horses_b, "image/jpeg")), ("iou", "0.1"),
                                        ("conf", "0.1")]), iou)
    run("iou=0.1 JSON (horses.jpg)", d.post_json("/v1/detect", {"image_b64": b64(horses_b), "iou": 0.1,
                                                                "conf": 0.1}), iou)
    run("iou=0.1 query (horses.jpg)",
        d.post_raw("/v1/detect", horses_b, "image/jpeg", query={"iou": 0.1, "conf": 0.1}), iou)

    # agnostic_nms
    agn = cli_detect(ctx, [dog], "--agnostic")[0]
    c.check(g, agn["detections"] != base["dog.jpg"]["detections"], "--agnostic changes dog.jpg's answer")
    run("agnostic_nms JSON", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "agnostic_nms": True}), agn)
    run("agnostic_nms=true query", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"agnostic_nms": "true"}),
        agn)
    run("agnostic_nms=1 multipart", d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg")),
                                                                    ("agnostic_nms", "1")]), agn)
    run("agnostic_nms=false query", d.post_raw("/v1/detect", dog_b, "image/jpeg",
                                               query={"agnostic_nms": "FALSE"}), base["dog.jpg"])

    # max_det
    md = cli_detect(ctx, [dog], "--max-det", "2")[0]
    c.check(g, len(md["detections"]) == 2, "--max-det 2 gives 2 detections")
    run("max_det=2 query", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"max_det": 2}), md)
    run("max_det=2 multipart", d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg")),
                                                               ("max_det", "2")]), md)
    run("max_det=2 JSON", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "max_det": 2}), md)

    # classes: names, ids, both, as a string and as a JSON array
    dc = cli_detect(ctx, [dog], "--classes", "dog,car")[0]
    c.check(g, {x["label"] for x in dc["detections"]} == {"dog", "car"}, "--classes dog,car keeps dog and car",
            str([x["label"] for x in dc["detections"]]))
    run("classes=dog,car query", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"classes": "dog,car"}), dc)
    run("classes=16,2 query (ids)", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"classes": "16,2"}), dc)
    run("classes='dog, 2' multipart", d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg")),
                                                                      ("classes", "dog, 2")]), dc)
    run("classes JSON array [\"dog\", 2]", d.post_json("/v1/detect", {"image_b64": b64(dog_b),
                                                                      "classes": ["dog", 2]}), dc)
    run("classes JSON string", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "classes": "car,dog"}), dc)
    bike = cli_detect(ctx, [dog], "--classes", "1")[0]
    run("classes=1 query (one id)", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"classes": "1"}), bike)

    # exif: dog.jpg with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    rotated = ctx.tmp / "dog-exif6.jpg"
    rotated.write_bytes(with_exif_orientation(dog_b, 6))
    rot_b = rotated.read_bytes()
    up, raw = cli_detect(ctx, [rotated])[0], cli_detect(ctx, [rotated], "--no-exif")[0]
    c.check(g, (up["width"], up["height"]) == (raw["height"], raw["width"]) and raw["width"] > raw["height"],
            "the CLI applies the EXIF orientation written here", f"{up['width']}x{up['height']}")
    run("exif default (orientation 6)", d.post_raw("/v1/detect", rot_b, "image/jpeg"), up, exif_rotated=True)
    run("exif=true multipart", d.post_multipart("/v1/detect", [("image", ("r.jpg", rot_b, "image/jpeg")),
                                                               ("exif", "true")]), up, exif_rotated=True)
    run("exif=false query", d.post_raw("/v1/detect", rot_b, "image/jpeg", query={"exif": "false"}), raw)
    run("exif=0 multipart", d.post_multipart("/v1/detect", [("image", ("r.jpg", rot_b, "image/jpeg")),
                                                            ("exif", "0")]), raw)
    run("exif false JSON", d.post_json("/v1/detect", {"image_b64": b64(rot_b), "exif": False}), raw)

    # timeout_ms / X-Timeout-Ms: accepted, a generous deadline changes nothing; bad values are named
    run("timeout_ms=20000 query", d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"timeout_ms": 20000}),
        base["dog.jpg"])
    run("timeout_ms JSON", d.post_json("/v1/detect", {"image_b64": b64(dog_b), "timeout_ms": 20000}),
        base["dog.jpg"])
    run("timeout_ms multipart", d.post_multipart("/v1/detect", [("image", ("d.jpg", dog_b, "image/jpeg")),
                                                                ("timeout_ms", "20000")]), base["dog.jpg"])
    run("X-Timeout-Ms header", d.post_raw("/v1/detect", dog_b, "image/jpeg", headers={"X-Timeout-Ms": "20000"}),
        base["dog.jpg"])
    run("timeout_ms query wins over X-Timeout-Ms",
        d.post_raw("/v1/detect", dog_b, "image/jpeg", query={"timeout_ms": 20000}, headers={"X-Timeout-Ms": "x"}),
        base["dog.jpg"])
    for hdr in ("0", "abc", "600001"):
        r = d.post_raw("/v1/detect", dog_b, "image/jpeg", headers={"X-Timeout-Ms": hdr})
        body = ctx.expect(g, r, "POST", "/v1/detect", 400, f"X-Timeout-Ms: {hdr}", route="detect")
        c.check(g, body is not None and body["error"]["code"] == "INVALID_PARAM"
                and body["error"].get("field") == "timeout_ms",
                f"X-Timeout-Ms: {hdr} is INVALID_PARAM naming timeout_ms", str(body))
    r = d.post_json("/v1/detect", {"image_b64": b64(dog_b), "timeout_ms": 0})
    body = ctx.expect(g, r, "POST", "/v1/detect", 400, "timeout_ms 0 JSON", route="detect")
    c.check(g, body is not None and body["error"].get("field") == "$.timeout_ms", "timeout_ms 0 names $.timeout_ms",
            str(body))

    # everything at once, as JSON and as multipart
    allp = cli_detect(ctx, [horses], "--model", SMALL_MODEL, "--conf", "0.3", "--iou", "0.5", "--agnostic",
                      "--max-det", "3", "--classes", "horse,person")[0]
    run("all parameters JSON", d.post_json("/v1/detect", {
        "image_b64": b64(horses_b), "model": SMALL_MODEL, "conf": 0.3, "iou": 0.5, "agnostic_nms": True,
        "max_det": 3, "classes": ["horse", "person"], "exif": True, "timeout_ms": 30000}), allp, model=SMALL_MODEL)
    run("all parameters multipart", d.post_multipart("/v1/detect", [
        ("model", SMALL_MODEL), ("conf", "0.3"), ("iou", "0.5"), ("agnostic_nms", "true"), ("max_det", "3"),
        ("classes", "horse,person"), ("exif", "true"), ("timeout_ms", "30000"),
        ("image", ("h.jpg", horses_b, "image/jpeg"))]), allp, model=SMALL_MODEL)


# darknet's coco.names -> COCO's category names, where they differ (what DeepStack reports)
COCO_OF_DARKNET = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
                   "pottedplant": "potted plant", "diningtable": "dining table", "tvmonitor": "tv"}


def test_deepstack(ctx, d):
    g = "deepstack"
    c = ctx.c
    cli = cli_detect(ctx, IMAGES, "--conf", "0.4")
    # DeepStack's min_confidence default is 0.40: the answers without it are the CLI's at --conf 0.4
    for (img, doc), conf in zip(zip(IMAGES, cli), ["0.4", None] * len(IMAGES)):
        r = d.post_multipart("/v1/vision/detection", [("image", (img.name, img.read_bytes(), "image/jpeg"))] +
                             ([("min_confidence", conf)] if conf else []))
        body = ctx.expect(g, r, "POST", "/v1/vision/detection", 200, img.name, route="deepstack_detection")
        if body is None:
            continue
        preds, dets = body["predictions"], doc["detections"]
        ok = (body["success"] is True and body["count"] == len(preds) == len(dets) and
              isinstance(body.get("duration"), int) and body["duration"] >= 0)
        for p, x in zip(preds, dets):
            b = x["box"]
            # COCO's names on the DeepStack routes (the CLI keeps the model's .names)
            ok = ok and p["label"] == COCO_OF_DARKNET.get(x["label"], x["label"]) and p["confidence"] == x["confidence"]
            for k, v in (("x_min", b["x1"]), ("y_min", b["y1"]), ("x_max", b["x2"]), ("y_max", b["y2"])):
                # whole pixels: int() of the float the CLI shows rounded to 0.01
                ok = ok and math.floor(v - 0.006) <= p[k] <= math.floor(v + 0.006)
        c.check(g, ok, f"{img.name} min_confidence={conf}: predictions are the CLI's detections (--conf 0.4) "
                "in DeepStack's shape, COCO labels, duration",
                f"{preds} vs {dets}")
    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    r = d.post_multipart("/v1/vision/detection", [("image", ("d.jpg", dog, "image/jpeg")),
                                                  ("unknown_field", "ignored"), ("api_key", "not-checked")])
    ctx.expect(g, r, "POST", "/v1/vision/detection", 200, "unknown fields and api_key ignored without keys",
               route="deepstack_detection")
    r = d.post_multipart("/v1/vision/detection", [("image", ("d.jpg", dog[:3000], "image/jpeg"))])
    body = ctx.expect(g, r, "POST", "/v1/vision/detection", 400, "truncated JPEG", route="deepstack_detection")
    c.check(g, body is not None and body.get("success") is False and body.get("code") == 400,
            "errors on the DeepStack route are in DeepStack's shape", str(body))


def test_endpoints(ctx, d):
    g = "endpoints"
    c = ctx.c
    r = d.get("/v1/models")
    body = ctx.expect(g, r, "GET", "/v1/models", 200, route="models")
    want = sorted(p.name for p in MODELS_DIR.iterdir() if (p / f"{p.name}.cfg").exists())
    if body:
        models = {m["name"]: m for m in body["models"] if m["kind"] == "yolo"}
        faces = {m["kind"]: m for m in body["models"] if m["kind"] != "yolo"}
        c.check(g, sorted(models) == want, f"/v1/models lists the models in ./models {want}", str(sorted(models)))
        c.check(g, [m["name"] for m in models.values() if m["default"]] == [DEFAULT_MODEL],
                f"exactly one default model, {DEFAULT_MODEL}")
        want_faces = {"face_detector": (416, 416), "face_landmarks": (112, 112), "face_recognition": (150, 150)} \
            if (MODELS_DIR / "faces").is_dir() else {}
        c.check(g, {k: (m["input"]["width"], m["input"]["height"]) for k, m in faces.items()} == want_faces,
                "/v1/models lists the face networks (when installed) with their input sizes", str(faces))
        for name, m in models.items():
            w, h = net_size(name) if name in want else (None, None)
            c.check(g, (m["input"]["width"], m["input"]["height"]) == (w, h), f"{name}: input size is the cfg's")
            names_file = next((MODELS_DIR / name).glob("*.names"), None)
            classes = [x.strip() for x in names_file.read_text().splitlines() if x.strip()] if names_file else None
            c.check(g, m["classes"] == classes, f"{name}: classes are the .names file's", str(m["classes"][:5]))
            c.check(g, m["kind"] == "yolo" and m["defaults"] == {"conf": 0.25, "iou": 0.45, "max_det": 100},
                    f"{name}: kind yolo and default thresholds 0.25/0.45/100", str(m["defaults"]))
    r = d.request("HEAD", "/v1/models")
    ctx.expect(g, r, "HEAD", "/v1/models", 200, route="models")

    r = d.get("/healthz")
    body = ctx.expect(g, r, "GET", "/healthz", 200, route="healthz")
    c.check(g, body == {"status": "ok"}, "/healthz says ok", str(body))
    r = d.request("HEAD", "/healthz")
    ctx.expect(g, r, "HEAD", "/healthz", 200, route="healthz")
    c.check(g, r.body == b"", "HEAD /healthz has no body")
    r = d.get("/readyz")
    body = ctx.expect(g, r, "GET", "/readyz", 200, route="readyz")
    c.check(g, body == {"status": "ready"}, "/readyz says ready", str(body))
    r = d.request("HEAD", "/readyz")
    ctx.expect(g, r, "HEAD", "/readyz", 200, route="readyz")

    r = d.get("/openapi.json")
    body = ctx.expect(g, r, "GET", "/openapi.json", 200, route="openapi")
    with open(ROOT / "proto" / "openapi.json", encoding="utf-8") as f:
        c.check(g, body == json.load(f), "/openapi.json is proto/openapi.json")
    c.check(g, body == ctx.api.doc, "/openapi.json is proto/openapi.yaml as JSON")

    r = d.get("/v1/models?x=1", headers={"Accept": "application/json"})
    ctx.expect(g, r, "GET", "/v1/models", 200, "with a query string", route="models")
    r = d.request("OPTIONS", "/v1/detect")
    ctx.expect(g, r, "OPTIONS", "/v1/detect", 204, "without Origin", route="detect")
    r = d.get("/v1/nope")
    body = ctx.expect(g, r, "GET", "/v1/nope", 404, route="unknown")
    c.check(g, body is not None and body["error"]["code"] == "NOT_FOUND", "unknown route: NOT_FOUND", str(body))
    r = d.get("/v1/detect")
    body = ctx.expect(g, r, "GET", "/v1/detect", 405, route="detect")
    c.check(g, body is not None and body["error"]["code"] == "METHOD_NOT_ALLOWED", "GET /v1/detect: 405 code",
            str(body))
    allow = {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}
    c.check(g, "POST" in allow and "GET" not in allow, "405 has an Allow header naming POST (as openapi.yaml says)",
            f"Allow: {r.header('Allow')!r}")


def test_request_id(ctx, d):
    g = "request-id"
    c = ctx.c
    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    for rid in ("client-id_1.A", "x" * 64):
        r = d.post_raw("/v1/detect", dog, "image/jpeg", headers={"X-Request-Id": rid})
        body = ctx.expect(g, r, "POST", "/v1/detect", 200, f"X-Request-Id {rid[:20]}", route="detect")
        c.check(g, r.header("X-Request-Id") == rid and body is not None and body["request_id"] == rid,
                f"a safe X-Request-Id ({len(rid)} chars) is echoed in header and body", r.header("X-Request-Id"))
    r = d.get("/healthz", headers={"X-Request-Id": "health-1"})
    c.check(g, r.header("X-Request-Id") == "health-1", "echoed on /healthz too")
    r = d.post_raw("/v1/detect", b"", "image/jpeg", headers={"X-Request-Id": "err-1"})
    body = ctx.expect(g, r, "POST", "/v1/detect", 400, "error with X-Request-Id", route="detect")
    c.check(g, body is not None and body.get("request_id") == "err-1", "echoed in error bodies", str(body))
    for bad in ("has space", "x" * 65, "semi;colon", "<script>", "ünïcode"):
        r = d.get("/healthz", headers={"X-Request-Id": bad.encode("utf-8").decode("latin-1")})
        got = r.header("X-Request-Id")
        c.check(g, got is not None and got != bad and ID_RE.match(got) is not None,
                f"an unsafe X-Request-Id {bad!r} is replaced by a fresh one", str(got))
        ctx.counts[("healthz", r.status)] = ctx.counts.get(("healthz", r.status), 0) + 1
    ids = set()
    for _ in range(5):
        ids.add(d.get("/healthz").header("X-Request-Id"))
        ctx.counts[("healthz", 200)] = ctx.counts.get(("healthz", 200), 0) + 1
    c.check(g, len(ids) == 5, "fresh request ids are unique", str(ids))


def test_cors(ctx, d):
    g = "cors"
    c = ctx.c
    pre = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type, authorization, x-timeout-ms"}
    r = d.request("OPTIONS", "/v1/detect", headers=pre)
    ctx.expect(g, r, "OPTIONS", "/v1/detect", 204, "preflight from the allowed origin", route="detect")
    c.check(g, r.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN, "preflight: Allow-Origin is the origin",
            str(r.header("Access-Control-Allow-Origin")))
    methods = (r.header("Access-Control-Allow-Methods") or "").upper()
    c.check(g, "POST" in methods and "GET" in methods, "preflight: Allow-Methods has GET and POST", methods)
    hdrs = (r.header("Access-Control-Allow-Headers") or "").lower()
    c.check(g, all(h in hdrs for h in ("content-type", "authorization", "x-api-key", "x-timeout-ms")),
            "preflight: Allow-Headers has Content-Type, Authorization, X-API-Key, X-Timeout-Ms", hdrs)
    r = d.request("OPTIONS", "/v1/detect", headers=dict(pre, Origin="http://evil.test"))
    ctx.expect(g, r, "OPTIONS", "/v1/detect", 204, "preflight from another origin", route="detect")
    c.check(g, r.header("Access-Control-Allow-Origin") is None and r.header("Access-Control-Allow-Methods") is None,
            "preflight from another origin: no CORS headers", str(dict(r.headers)))

    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    r = d.post_raw("/v1/detect", dog, "image/jpeg", headers={"Origin": ALLOWED_ORIGIN})
    ctx.expect(g, r, "POST", "/v1/detect", 200, "from the allowed origin", route="detect")
    c.check(g, r.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN, "allowed origin: Allow-Origin on the answer")
    c.check(g, "x-request-id" in (r.header("Access-Control-Expose-Headers") or "").lower(),
            "allowed origin: X-Request-Id is exposed to scripts")
    c.check(g, "origin" in (r.header("Vary") or "").lower(), "allowed origin: Vary: Origin")
    r = d.post_raw("/v1/detect", dog, "image/jpeg", headers={"Origin": "http://evil.test"})
    ctx.expect(g, r, "POST", "/v1/detect", 200, "from another origin", route="detect")
    c.check(g, r.header("Access-Control-Allow-Origin") is None, "other origin: no Allow-Origin")
    r = d.post_raw("/v1/detect", b"not an image", "image/png", headers={"Origin": ALLOWED_ORIGIN})
    ctx.expect(g, r, "POST", "/v1/detect", 415, "error from the allowed origin", route="detect")
    c.check(g, r.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN,
            "allowed origin: Allow-Origin on errors too (so pages can read them)")
    r = d.get("/v1/nope", headers={"Origin": ALLOWED_ORIGIN})
    ctx.expect(g, r, "GET", "/v1/nope", 404, "404 from the allowed origin", route="unknown")
    c.check(g, r.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN, "allowed origin: Allow-Origin on a 404")
    r = d.get("/healthz", headers={"Origin": ALLOWED_ORIGIN.upper()})
    ctx.counts[("healthz", r.status)] = ctx.counts.get(("healthz", r.status), 0) + 1
    c.check(g, r.header("Access-Control-Allow-Origin") in (None, ALLOWED_ORIGIN.upper()),
            "origin matching does not reflect a different origin")


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')


def parse_metrics(text):
    """{name: {labels-string: value}}, {name: type}, bad lines."""
    samples, types, bad = {}, {}, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            bad.append(line)
            continue
        samples.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
    return samples, types, bad


def check_histogram(c, g, samples, types, name, min_count):
    c.check(g, types.get(name) == "histogram", f"{name} is a histogram", str(types.get(name)))
    buckets = samples.get(name + "_bucket", {})
    les = []
    for labels, v in buckets.items():
        m = re.search(r'le="([^"]+)"', labels)
        les.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)), v))
    les.sort()
    count = samples.get(name + "_count", {}).get("")
    c.check(g, len(les) >= 2 and les[-1][0] == math.inf and les[-1][1] == count,
            f"{name}: +Inf bucket equals _count", f"{les[-1:]} vs {count}")
    c.check(g, all(a[1] <= b[1] for a, b in zip(les, les[1:])), f"{name}: buckets are cumulative")
    c.check(g, count is not None and count >= min_count, f"{name}: _count >= {min_count}", str(count))
    c.check(g, samples.get(name + "_sum", {}).get("", -1) >= 0, f"{name}: _sum present")


def test_metrics(ctx, d):
    g = "metrics"
    c = ctx.c
    # A request is counted after its response is sent, and a worker goes back to idle after handing its
    # answer over, so the last request may still be on its way: read /metrics until every request sent so
    # far is counted and the pool is idle, for up to 10 s.
    until = time.monotonic() + 10.0
    while True:
        r = d.get("/metrics")
        samples, types, bad = parse_metrics(r.body.decode()) if r.status == 200 else ({}, {}, [])
        req = samples.get("visiond_requests_total", {})
        counted = all(req.get(f'{{route="{route}",status="{status}"}}', 0) >= n
                      for (route, status), n in ctx.counts.items()) and \
            samples.get("visiond_workers_busy", {}).get("") == 0 and samples.get("visiond_queue_depth", {}).get("") == 0
        if r.status != 200 or counted or time.monotonic() >= until:
            break
        time.sleep(0.05)
    ctx.expect(g, r, "GET", "/metrics", 200)
    c.check(g, (r.header("Content-Type") or "").startswith("text/plain"), "Content-Type text/plain",
            str(r.header("Content-Type")))
    c.check(g, not bad, "every line is a comment or a Prometheus sample", str(bad[:3]))
    req = samples.get("visiond_requests_total", {})
    c.check(g, types.get("visiond_requests_total") == "counter", "visiond_requests_total is a counter")
    for (route, status), n in sorted(ctx.counts.items()):
        got = req.get(f'{{route="{route}",status="{status}"}}', 0)
        c.check(g, got >= n, f'visiond_requests_total{{route="{route}",status="{status}"}} >= {n} sent', str(got))
    detect_200 = ctx.counts.get(("detect", 200), 0) + ctx.counts.get(("deepstack_detection", 200), 0)
    check_histogram(c, g, samples, types, "visiond_queue_seconds", detect_200)
    check_histogram(c, g, samples, types, "visiond_inference_seconds", detect_200)
    check_histogram(c, g, samples, types, "visiond_request_duration_seconds", sum(ctx.counts.values()))
    for name, kind in (("visiond_queue_depth", "gauge"), ("visiond_workers_busy", "gauge"),
                       ("visiond_workers", "gauge"), ("visiond_process_resident_memory_bytes", "gauge")):
        c.check(g, types.get(name) == kind and "" in samples.get(name, {}), f"{name} is a {kind} with a value")
    c.check(g, samples.get("visiond_workers", {}).get("") == 2, "visiond_workers is 2 (--workers 2)")
    c.check(g, samples.get("visiond_queue_depth", {}).get("") == 0, "queue depth 0 when idle")
    c.check(g, samples.get("visiond_workers_busy", {}).get("") == 0, "busy workers 0 when idle")
    rss = samples.get("visiond_process_resident_memory_bytes", {}).get("", 0)
    c.check(g, 10e6 < rss < 4e9, "RSS bytes plausible (10 MB .. 4 GB)", str(rss))


def test_main_daemon(ctx):
    with daemon.Daemon(ctx.visiond, "--cors", ALLOWED_ORIGIN) as d:
        test_detect_forms(ctx, d)
        test_params(ctx, d)
        test_deepstack(ctx, d)
        test_endpoints(ctx, d)
        test_request_id(ctx, d)
        test_cors(ctx, d)
        test_metrics(ctx, d)
        code, err = d.stop()
    c = ctx.c
    c.check("lifecycle", code == 0, "main daemon exits 0 on SIGTERM", f"exit {code}")
    c.check("lifecycle", not daemon.sanitizer_report(err), "main daemon: no sanitizer report",
            daemon.sanitizer_report(err))
    recs = d.log_records()
    mine = [x for x in recs if x.get("request_id") == "client-id_1.A"]
    c.check("logs", len(mine) == 1 and mine[0].get("route") == "detect" and mine[0].get("status") == 200
            and mine[0].get("method") == "POST" and mine[0].get("bytes_in", 0) > 0 and "ms" in mine[0],
            "one JSON log line per request with request_id, method, route, status, bytes, ms", str(mine))
    c.check("logs", any("loaded model" in x.get("msg", "") for x in recs), "start-up lines say what was loaded")


# ---- other daemons ----------------------------------------------------------------------------------

def test_keys(ctx):
    g = "keys"
    c = ctx.c
    keys = ctx.tmp / "keys"
    keys.write_text(f"# test keys\n\n  {API_KEY}  \nsecond-key-aaaaaaaaaaaa\n")
    dog_path = daemon.SHARED / "images" / "dog.jpg"
    dog = dog_path.read_bytes()
    cli = cli_detect(ctx, [dog_path])[0]
    wrong = API_KEY[:-1] + ("0" if API_KEY[-1] != "0" else "1")
    with daemon.Daemon(ctx.visiond, "--keys", str(keys), "--bind", "0.0.0.0", "--cors", ALLOWED_ORIGIN) as d:
        c.check(g, d.host == "0.0.0.0", "with keys the daemon listens on 0.0.0.0", str(d.host))
        for hdrs, what in (({}, "no key"), ({"Authorization": f"Bearer {wrong}"}, "wrong Bearer key"),
                           ({"X-API-Key": wrong}, "wrong X-API-Key"), ({"Authorization": API_KEY}, "key without Bearer"),
                           ({"Authorization": f"Basic {API_KEY}"}, "Basic scheme"),
                           ({"X-API-Key": API_KEY[:8]}, "a prefix of the key"), ({"X-API-Key": ""}, "empty key")):
            r = d.post_raw("/v1/detect", dog, "image/jpeg", headers=hdrs)
            body = ctx.expect(g, r, "POST", "/v1/detect", 401, what)
            c.check(g, body is not None and body["error"]["code"] == "UNAUTHORIZED", f"{what}: UNAUTHORIZED", str(body))
        # openapi.yaml: "every route but /healthz and /readyz requires one"
        for path in ("/v1/models", "/metrics", "/openapi.json"):
            ctx.expect(g, d.get(path), "GET", path, 401, "no key")
            ctx.expect(g, d.get(path, headers={"X-API-Key": API_KEY}), "GET", path, 200, "X-API-Key")
        r = d.post_raw("/v1/detect", dog, "image/jpeg", headers={"Authorization": f"Bearer {API_KEY}"})
        check_detect_body(ctx, g, "Bearer key", ctx.expect(g, r, "POST", "/v1/detect", 200, "Bearer key"), cli)
        r = d.post_raw("/v1/detect", dog, "image/jpeg", headers={"X-API-Key": "second-key-aaaaaaaaaaaa"})
        check_detect_body(ctx, g, "second key, X-API-Key",
                          ctx.expect(g, r, "POST", "/v1/detect", 200, "X-API-Key second key"), cli)
        r = d.post_multipart("/v1/detect", [("image", ("d.jpg", dog, "image/jpeg"))],
                             headers={"Authorization": f"bearer {API_KEY}"})
        ctx.expect(g, r, "POST", "/v1/detect", 200, "multipart, lower-case bearer")

        # DeepStack: the form field api_key, or the headers
        form = [("image", ("d.jpg", dog, "image/jpeg")), ("min_confidence", "0.4")]
        r = d.post_multipart("/v1/vision/detection", form + [("api_key", API_KEY)])
        body = ctx.expect(g, r, "POST", "/v1/vision/detection", 200, "api_key form field")
        c.check(g, body is not None and body.get("success") is True and body["count"] >= 1,
                "DeepStack api_key field: detections", str(body)[:200])
        r = d.post_multipart("/v1/vision/detection", form, headers={"X-API-Key": API_KEY})
        ctx.expect(g, r, "POST", "/v1/vision/detection", 200, "X-API-Key header")
        for extra, what in (([], "no key"), ([("api_key", wrong)], "wrong api_key field")):
            r = d.post_multipart("/v1/vision/detection", form + extra)
            body = ctx.expect(g, r, "POST", "/v1/vision/detection", 401, what)
            c.check(g, body is not None and body.get("success") is False and body.get("code") == 401,
                    f"DeepStack {what}: 401 in DeepStack's shape", str(body))

        for path in ("/healthz", "/readyz"):
            ctx.expect(g, d.get(path), "GET", path, 200, "needs no key")
        r = d.request("OPTIONS", "/v1/detect", headers={"Origin": ALLOWED_ORIGIN,
                                                        "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "authorization"})
        ctx.expect(g, r, "OPTIONS", "/v1/detect", 204, "preflight needs no key")
        c.check(g, r.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN, "preflight without key: CORS headers")
        r = d.post_raw("/v1/detect", dog, "image/jpeg", headers={"Origin": ALLOWED_ORIGIN})
        ctx.expect(g, r, "POST", "/v1/detect", 401, "from an allowed origin without key")
        c.check(g, r.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN,
                "a 401 to an allowed origin carries Allow-Origin (the page can read why)")
        code, err = d.stop()
    c.check(g, code == 0, "keys daemon exits 0 on SIGTERM", f"exit {code}")
    c.check(g, not daemon.sanitizer_report(err), "keys daemon: no sanitizer report", daemon.sanitizer_report(err))
    c.check(g, API_KEY not in err and wrong not in err and "second-key" not in err,
            "no key (right or wrong) appears in the log")
    c.check(g, "API keys required" in err, "the start-up line says keys are required")

    short = ctx.tmp / "short-keys"
    short.write_text("tooshort-12345\n")
    p = daemon.run_visiond(ctx.visiond, "serve", "--config", "/dev/null", "--port", "0", "--keys", str(short),
                           timeout=30)
    c.check(g, p.returncode != 0, "a key shorter than 16 characters: the daemon does not start", f"exit {p.returncode}")
    c.check(g, "too short" in p.stderr and f"{short}:1" in p.stderr, "... and says which line is too short",
            p.stderr[-300:])
    c.check(g, "tooshort-12345" not in p.stderr + p.stdout, "... without echoing the key")
    p = daemon.run_visiond(ctx.visiond, "serve", "--config", "/dev/null", "--port", "0", "--keys",
                           str(ctx.tmp / "missing-keys"), timeout=30)
    c.check(g, p.returncode != 0 and "missing-keys" in p.stderr, "a missing keys file stops the daemon, named",
            p.stderr[-300:])


def test_bind(ctx):
    g = "bind"
    c = ctx.c
    for args, env, where in ((["--bind", "0.0.0.0"], None, "flag --bind"),
                             (["--bind", "::"], None, "flag --bind"),
                             ([], {"VISIOND_BIND": "0.0.0.0"}, "env VISIOND_BIND")):
        p = daemon.run_visiond(ctx.visiond, "serve", "--config", "/dev/null", "--port", "0", *args, env=env,
                               timeout=30)
        c.check(g, p.returncode not in (0, None), f"{args or env} without keys: refuses to start",
                f"exit {p.returncode}")
        c.check(g, "refusing to listen" in p.stderr and "keys" in p.stderr and where in p.stderr,
                f"{args or env}: the message says why and names {where}", p.stderr[-300:])
        c.check(g, "listening on" not in p.stderr, f"{args or env}: never listened")


def test_print_config(ctx):
    g = "config"
    c = ctx.c
    conf = ctx.tmp / "visiond.conf"
    conf.write_text("# test config\nqueue = 7\ntimeout_ms = 5000\nport = 1111\n")
    p = daemon.run_visiond(ctx.visiond, "serve", "--config", str(conf), "--print-config", "--port", "9999",
                           env={"VISIOND_WORKERS": "3", "VISIOND_TIMEOUT_MS": "6000", "VISIOND_PORT": "2222"})
    c.check(g, p.returncode == 0, "--print-config exits 0", p.stderr)
    rows = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^(\w+)\s*=\s*(.*?)\s*#\s*(.*)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    expect = {"port": ("9999", "flag --port"), "workers": ("3", "env VISIOND_WORKERS"),
              "timeout_ms": ("6000", "env VISIOND_TIMEOUT_MS"), "queue": ("7", f"{conf}:2"),
              "bind": ("127.0.0.1", "default"), "max_body": ("20M", "default"), "max_pixels": ("40000000", "default"),
              "default_model": (DEFAULT_MODEL, "default"), "models": ("models", "default")}
    for name, want in expect.items():
        c.check(g, rows.get(name) == want, f"--print-config: {name} = {want[0]} from {want[1]}", str(rows.get(name)))
    for name in ("bind", "port", "models", "default_model", "workers", "blas_threads", "queue", "timeout_ms",
                 "max_body", "max_pixels", "cors", "keys", "log_level"):
        c.check(g, name in rows, f"--print-config lists {name}")
    c.check(g, str(conf) in p.stdout.splitlines()[0], "--print-config names the config file", p.stdout[:200])

    bad = ctx.tmp / "bad.conf"
    bad.write_text("queue = 7\nno_such_key = 1\n")
    p = daemon.run_visiond(ctx.visiond, "serve", "--config", str(bad), "--port", "0", timeout=30)
    c.check(g, p.returncode not in (0, None) and f"{bad}:2" in p.stderr and "no_such_key" in p.stderr,
            "an unknown key in the config file is fatal, with file:line", f"exit {p.returncode}: {p.stderr[-300:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not IMAGES or not (MODELS_DIR / DEFAULT_MODEL).is_dir() or not (MODELS_DIR / SMALL_MODEL).is_dir():
        print("SKIP: needs ../shared/images/*.jpg and ./models (scripts/fetch-models)")
        return 77
    ctx = Ctx(pathlib.Path(args.visiond).resolve())
    try:
        test_main_daemon(ctx)
        test_keys(ctx)
        test_bind(ctx)
        test_print_config(ctx)
    finally:
        for p in sorted(ctx.tmp.iterdir()):
            p.unlink()
        ctx.tmp.rmdir()
    return ctx.c.summary("test_http_api")


if __name__ == "__main__":
    sys.exit(main())
