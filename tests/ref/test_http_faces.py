#!/usr/bin/python3
"""Integration tests of the face routes of `visiond serve` (issue 4): POST /v1/faces, /v1/verify and the
DeepStack aliases /v1/vision/face and /v1/vision/face/match, against the CLI (`visiond faces`,
`visiond verify`: same binary, same files) and visiond_facedump (engine/face.c direct), on the face-api
package's demo photos (models/faces/package/demo/sample*.jpg) and the dlib_johns chips.

Every answer must carry X-Request-Id and, when JSON, match proto/openapi.yaml's schema for its path,
method and status.

  faces      every sample photo as a raw image/jpeg body, as multipart (file `image`) and as JSON
             image_b64, plus PNG bodies: the answer equals `visiond faces`' line (model, image, faces,
             count; everything but request_id and timing_ms), and facedump's faces sorted largest
             first (boxes and landmarks to the 0.01 px rounding, scores to 1e-4, embeddings to the 6
             significant digits of the JSON); no face (dog.jpg) is a 200 with an empty list.
  params     det_threshold, input_size (and its limit), limit (largest first), landmarks, embedding,
             exif, as query string, multipart fields and JSON members: each equals the CLI with the
             matching flags, and changes the answer where it should.
  verify     images as multipart (image1/image2) and JSON (image1_b64/image2_b64), embeddings as JSON
             arrays and comma lists, one image + one embedding: the answer equals `visiond verify`'s;
             its distance is the Euclidean distance of the embeddings /v1/faces returns for the faces
             it names (largest by default, highest det_score with face_select=best); match_threshold
             decides and is echoed; aligned=true on dlib_johns chips equals facedump --aligned's
             distance; det_threshold and input_size reach the detector.
  errors     no face: 422 NO_FACE naming image1 or image2 (whatever the form); one side missing: 400
  fallback   a side with no face at det_threshold takes its best face down to min_det_threshold (0.1):
             fallback true with that face's det_score (scream.jpg, 0.16); dog.jpg stays NO_FACE
             naming the field (image2, $.image2_b64, embedding2, $.embedding2).
  deepstack  /v1/vision/face = /v1/faces in DeepStack's shape (min_confidence default 0.55 = /v1/faces'
             det_threshold 0.55), with duration; /v1/vision/face/match similarity = 0.67^(d / 0.6) of
             /v1/verify's distance d (docs/FACES.md); errors in DeepStack's shape.
  startup    a models folder whose faces/ has a corrupt manifest, a renamed tensor or a truncated .bin
             (one daemon each): the daemon logs an error naming the manifest or the tensor, keeps
             serving YOLO (/v1/detect 200), answers /readyz 503 with that reason and the face routes
             503 NOT_READY with it; without faces/ at all, /readyz is 200 and the face routes 503.
  Every daemon exits 0 on SIGTERM, without a sanitizer report.

usage: test_http_faces.py --visiond build/visiond [--facedump build/tests/visiond_facedump]
       (run from the project root, as ctest does)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without python3-opencv/-yaml/-jsonschema or the face
models.
"""
import argparse
import base64
import json
import math
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

try:
    import cv2
    import jsonschema  # noqa: F401
    import yaml  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (needs Debian's python3-opencv, python3-yaml, python3-jsonschema: /usr/bin/python3)")
    sys.exit(77)

ROOT = daemon.ROOT
FACES = ROOT / "models" / "faces"
DEMO = FACES / "package" / "demo"
SAMPLES = sorted(DEMO.glob("sample*.jpg"))
JOHNS = daemon.SHARED / "faces" / "dlib_johns"
DOG = daemon.SHARED / "images" / "dog.jpg"
HEAVY_REQUEST_S = 300.0  # client wait for a request that describes every box of a photo (det_threshold 0)
DEEPSTACK_FACE_CONF = 0.55  # DeepStack's min_confidence default on /v1/vision/face


def similarity(distance):
    """docs/FACES.md's f(d) = 0.67^(d / 0.6): 1 at 0, 0.67 at the match distance 0.6."""
    return 0.67 ** (distance / 0.6)
DIST_TOL = 1e-5  # distances from JSON embeddings (6 significant digits) vs the daemon's own


def b64(data):
    return base64.b64encode(data).decode()


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def area(box):
    return (box["x2"] - box["x1"]) * (box["y2"] - box["y1"])


def strip(doc):
    """An answer without what differs from call to call (request_id, timing_ms)."""
    return {k: v for k, v in doc.items() if k not in ("request_id", "timing_ms")}


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only on one side"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def with_exif_orientation(jpeg, orientation):
    """The JPEG with an APP1 Exif segment (one IFD entry: Orientation) after SOI."""
    tiff = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) +
            struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", orientation, 0) + struct.pack("<I", 0))
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


class Ctx:
    def __init__(self, visiond, facedump):
        self.visiond = visiond
        self.facedump = facedump
        self.c = daemon.Checks()
        self.api = daemon.OpenApi()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="visiond-http-faces-"))
        self.blas_core = None  # the OpenBLAS core type the daemon runs with (its start-up line)

    def expect(self, group, r, path, status, what="", method="POST"):
        """Checks status, X-Request-Id and the body against the OpenAPI schema for path, method and
        status; returns the body (None if the status differs)."""
        c = self.c
        label = f"{method} {path} {what}".strip()
        c.check(group, r.status == status, f"{label}: status {status}", f"got {r!r}")
        rid = r.header("X-Request-Id")
        c.check(group, bool(rid), f"{label}: X-Request-Id header")
        try:
            body = r.json()
        except ValueError as e:
            c.check(group, False, f"{label}: body is JSON", str(e))
            return None
        problems = self.api.validate(path.split("?")[0], method, r.status, body)
        c.check(group, not problems, f"{label}: body matches proto/openapi.yaml", "; ".join(problems[:3]))
        if isinstance(body, dict) and "request_id" in body:
            c.check(group, body["request_id"] == rid, f"{label}: request_id is the header's")
        return body if r.status == status else None

    def same(self, group, what, got, want):
        """got (an HTTP answer) equals want (the CLI's line) but for request_id and timing_ms."""
        if got is None or want is None:
            return self.c.check(group, False, f"{what}: both answers present", f"{got is None} {want is None}")
        d = first_difference(strip(got), strip(want))
        return self.c.check(group, d is None, f"{what}: equals the CLI's answer", d or "")


# ---- the references: CLI and facedump -----------------------------------------------------------------

def cli(ctx, *args, ok=True):
    # A hang guard, not a speed check: 210 faces with embeddings take minutes under ASan on a busy machine.
    p = daemon.run_visiond(ctx.visiond, *map(str, args), timeout=900)
    if ok and p.returncode != 0:
        raise RuntimeError(f"visiond {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def cli_faces(ctx, images, *flags):
    """`visiond faces --models-dir models FLAGS IMAGES...` -> one answer per image, in order."""
    p = cli(ctx, "faces", "--models-dir", "models", *flags, *images)
    docs = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    if len(docs) != len(images):
        raise RuntimeError(f"visiond faces printed {len(docs)} lines for {len(images)} images")
    return docs


def cli_verify(ctx, a, b, *flags):
    p = cli(ctx, "verify", "--models-dir", "models", *flags, a, b)
    return json.loads(p.stdout)


def facedump(ctx, images, *flags):
    """visiond_facedump's lines. It runs with the OpenBLAS kernels the daemon chose (visiond picks the
    best core type at start; the helper would get the library's default, whose sgemm rounds
    differently: up to 5e-5 relative in descriptors)."""
    env = daemon.clean_env({"OPENBLAS_CORETYPE": ctx.blas_core} if ctx.blas_core else None)
    r = subprocess.run([str(ctx.facedump), "--models", str(FACES), *flags, *map(str, images)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, check=False, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"visiond_facedump failed ({r.returncode}): {r.stderr[-1000:]}")
    return [json.loads(x) for x in r.stdout.splitlines()]


def near(a, b, tol):
    return abs(a - b) <= tol


def check_against_facedump(ctx, group, what, body, dump, embedding):
    """The answer's faces are facedump's, sorted largest box first, to the JSON's rounding."""
    c = ctx.c
    if body is None:
        return
    theirs = sorted(dump["faces"], key=lambda f: -(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    ok = body["count"] == len(theirs) == len(body["faces"])
    detail = f"{body['count']} faces vs facedump {len(theirs)}"
    worst = 0.0
    for g, f in zip(body["faces"], theirs):
        box = [g["box"][k] for k in ("x1", "y1", "x2", "y2")]
        if not all(near(x, y, 0.005 + 1e-6) for x, y in zip(box, f["box"])) or \
                not near(g["det_score"], f["score"], 5e-5 + 1e-9):
            ok, detail = False, f"box/score {box} {g['det_score']} vs facedump {f['box']} {f['score']}"
            break
        if len(g["landmarks"]) != 68 or not all(near(p[0], q[0], 0.005 + 1e-6) and near(p[1], q[1], 0.005 + 1e-6)
                                               for p, q in zip(g["landmarks"], f["landmarks"])):
            ok, detail = False, f"landmarks differ from facedump's for box {box}"
            break
        if embedding:
            e = g.get("embedding", [])
            rel = max((abs(x - y) / max(abs(y), 1e-30) for x, y in zip(e, f["descriptor"])), default=1.0)
            worst = max(worst, rel)
            if len(e) != 128 or rel > 5.01e-6:
                ok, detail = False, f"embedding of box {box}: {len(e)} values, max relative difference {rel:.2e}"
                break
    c.check(group, ok, f"{what}: faces equal facedump's, largest first"
            + (" (embeddings to 6 significant digits)" if embedding else ""), detail)


# ---- /v1/faces ------------------------------------------------------------------------------------------

def test_faces_forms(ctx, d):
    g = "faces"
    c = ctx.c
    cli_docs = dict(zip(SAMPLES, cli_faces(ctx, SAMPLES)))
    cli_emb = dict(zip(SAMPLES, cli_faces(ctx, SAMPLES, "--embedding")))
    dumps = dict(zip(SAMPLES, facedump(ctx, SAMPLES)))
    want_counts = [3, 1, 3, 3, 5, 5]  # docs/FACES.md: face-api at 416 / 0.5
    c.check(g, [cli_docs[p]["count"] for p in SAMPLES] == want_counts[:len(SAMPLES)],
            f"the CLI finds {want_counts} faces in sample1..6", str([cli_docs[p]["count"] for p in SAMPLES]))
    for img in SAMPLES:
        data, name = img.read_bytes(), img.name
        r = d.post_raw("/v1/faces", data, "image/jpeg")
        body = ctx.expect(g, r, "/v1/faces", 200, f"{name} raw")
        ctx.same(g, f"{name} raw image/jpeg", body, cli_docs[img])
        check_against_facedump(ctx, g, f"{name} raw", body, dumps[img], False)
        if body:
            areas = [area(f["box"]) for f in body["faces"]]
            c.check(g, areas == sorted(areas, reverse=True), f"{name}: faces largest first", str(areas))
        r = d.post_multipart("/v1/faces", [("image", (name, data, "image/jpeg"))])
        ctx.same(g, f"{name} multipart", ctx.expect(g, r, "/v1/faces", 200, f"{name} multipart"), cli_docs[img])
        r = d.post_json("/v1/faces", {"image_b64": b64(data), "embedding": True})
        body = ctx.expect(g, r, "/v1/faces", 200, f"{name} JSON embedding")
        ctx.same(g, f"{name} JSON image_b64 embedding=true", body, cli_emb[img])
        check_against_facedump(ctx, g, f"{name} JSON embedding=true", body, dumps[img], True)

    # PNG bodies (cv2 re-encodings) equal the CLI on the same PNG files
    pngs = []
    for src in SAMPLES[:2]:
        ok, enc = cv2.imencode(".png", cv2.imread(str(src), cv2.IMREAD_COLOR))
        path = ctx.tmp / (src.stem + ".png")
        path.write_bytes(enc.tobytes())
        pngs.append(path)
    for path, doc in zip(pngs, cli_faces(ctx, pngs)):
        data = path.read_bytes()
        ctx.same(g, f"{path.name} raw image/png",
                 ctx.expect(g, d.post_raw("/v1/faces", data, "image/png"), "/v1/faces", 200, path.name), doc)
        r = d.post_json("/v1/faces", {"image_b64": "data:image/png;base64," + b64(data)})
        ctx.same(g, f"{path.name} JSON data: URI", ctx.expect(g, r, "/v1/faces", 200, path.name), doc)

    # no face: a 200 with an empty list
    r = d.post_raw("/v1/faces", DOG.read_bytes(), "image/jpeg")
    body = ctx.expect(g, r, "/v1/faces", 200, "dog.jpg (no face)")
    c.check(g, body is not None and body["faces"] == [] and body["count"] == 0,
            "no face: 200 with an empty list", str(body)[:200])
    ctx.same(g, "dog.jpg", body, cli_faces(ctx, [DOG])[0])


def test_faces_params(ctx, d):
    g = "faces-params"
    c = ctx.c
    s5, s2 = SAMPLES[4], SAMPLES[1]
    s5b = s5.read_bytes()
    full = cli_faces(ctx, [s5])[0]

    def forms(what, params, want, image=s5, data=s5b):
        """The same parameters as query string, multipart fields and JSON members."""
        r = d.post_raw("/v1/faces", data, "image/jpeg", query=params)
        ctx.same(g, f"{what} query", ctx.expect(g, r, "/v1/faces", 200, f"{what} query"), want)
        fields = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()]
        r = d.post_multipart("/v1/faces", fields + [("image", (image.name, data, "image/jpeg"))])
        ctx.same(g, f"{what} multipart", ctx.expect(g, r, "/v1/faces", 200, f"{what} multipart"), want)
        r = d.post_json("/v1/faces", dict(params, image_b64=b64(data)))
        body = ctx.expect(g, r, "/v1/faces", 200, f"{what} JSON")
        ctx.same(g, f"{what} JSON", body, want)
        return body

    # det_threshold
    hi = cli_faces(ctx, [s5], "--det-threshold", "0.7")[0]
    c.check(g, 0 < hi["count"] < full["count"], "det_threshold 0.7 keeps fewer faces of sample5",
            f"{hi['count']} of {full['count']}")
    forms("det_threshold=0.7", {"det_threshold": 0.7}, hi)
    lo = cli_faces(ctx, [s5], "--det-threshold", "0.2")[0]
    c.check(g, lo["count"] >= full["count"], "det_threshold 0.2 keeps at least as many",
            f"{lo['count']} vs {full['count']}")
    forms("det_threshold=0.2", {"det_threshold": 0.2}, lo)

    # det_threshold 0 keeps every box the NMS leaves, some of them in the detector's zero padding below
    # or right of the photo: those have no pixel to describe and are dropped, the rest answered
    # Describing 210 faces is 3.6 s of work in a Release build and 22 s under ASan+UBSan on an idle core;
    # with ctest -j2 beside it, CI's ASan run passed 30 s. These two requests wait as long as the work takes.
    every = cli_faces(ctx, [s5], "--det-threshold", "0", "--embedding")[0]
    body = ctx.expect(g, d.post_json("/v1/faces", {"image_b64": b64(s5b), "det_threshold": 0, "embedding": True},
                                     timeout=HEAVY_REQUEST_S),
                      "/v1/faces", 200, "det_threshold=0")
    ctx.same(g, "det_threshold=0 JSON", body, every)
    if body:
        w, h = body["image"]["width"], body["image"]["height"]
        c.check(g, body["count"] > 100 and all(f["box"]["x1"] < w and f["box"]["y1"] < h and f["box"]["x2"] > 0
                                               and f["box"]["y2"] > 0 and len(f["embedding"]) == 128
                                               for f in body["faces"]),
                "det_threshold=0: 200, over 100 boxes, each with a pixel inside the image, each described",
                str(body["count"]))
    r = d.post_multipart("/v1/verify", [("image1", ("a.jpg", s5b, "image/jpeg")),
                                        ("image2", ("b.jpg", s5b, "image/jpeg")), ("det_threshold", "0")],
                        timeout=HEAVY_REQUEST_S)
    body = ctx.expect(g, r, "/v1/verify", 200, "det_threshold=0")
    c.check(g, body is not None and body["verified"] is True and body["distance"] == 0.0,
            "verify det_threshold=0: an answer (the same photo twice: distance 0)", str(body)[:200])

    # input_size
    small = cli_faces(ctx, [s5], "--input-size", "224")[0]
    c.check(g, small["faces"] != full["faces"], "input_size 224 answers differently from 416")
    forms("input_size=224", {"input_size": 224}, small)
    for bad, field in (({"input_size": 608}, "input_size"), ({"input_size": 100}, "input_size")):
        r = d.post_raw("/v1/faces", s5b, "image/jpeg", query=bad)
        body = ctx.expect(g, r, "/v1/faces", 400, f"{bad}")
        c.check(g, body is not None and body["error"]["code"] == "INVALID_PARAM" and body["error"]["field"] == field,
                f"{bad}: INVALID_PARAM naming {field}", str(body))
    r = d.post_json("/v1/faces", {"image_b64": b64(s5b), "input_size": 608})
    body = ctx.expect(g, r, "/v1/faces", 400, "JSON input_size 608")
    c.check(g, body is not None and body["error"]["field"] == "$.input_size" and "416" in body["error"]["message"],
            "input_size above the server's maximum: names $.input_size and the maximum", str(body))

    # limit: the largest faces
    two = cli_faces(ctx, [s5], "--limit", "2")[0]
    c.check(g, two["count"] == 2 and two["faces"] == full["faces"][:2],
            "--limit 2 gives the two largest faces of the full answer")
    forms("limit=2", {"limit": 2}, two)
    forms("limit=0 (all)", {"limit": 0}, full)
    forms("limit=100", {"limit": 100}, full)

    # landmarks / embedding
    nolm = cli_faces(ctx, [s5], "--no-landmarks")[0]
    body = forms("landmarks=false", {"landmarks": False}, nolm)
    if body:
        c.check(g, all("landmarks" not in f and "embedding" not in f for f in body["faces"])
                and "landmarks" not in body["model"] and "recognition" not in body["model"],
                "landmarks=false: no landmarks, no landmark model", str(body["model"]))
        c.check(g, [f["box"] for f in body["faces"]] == [f["box"] for f in full["faces"]],
                "landmarks=false: the same boxes")
    emb = cli_faces(ctx, [s5], "--embedding", "--no-landmarks", "--limit", "1")[0]
    body = forms("embedding=true landmarks=false limit=1", {"embedding": True, "landmarks": False, "limit": 1}, emb)
    if body:
        f = body["faces"][0]
        c.check(g, len(f.get("embedding", [])) == 128 and "landmarks" not in f
                and body["model"].get("recognition") == "face_recognition",
                "embedding without landmarks: 128 values, recognition model named", str(body["model"]))

    # exif: sample2 with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    rot = ctx.tmp / "sample2-exif6.jpg"
    rot.write_bytes(with_exif_orientation(s2.read_bytes(), 6))
    rb = rot.read_bytes()
    up, raw = cli_faces(ctx, [rot])[0], cli_faces(ctx, [rot], "--no-exif")[0]
    c.check(g, up["image"]["exif_rotated"] and (up["image"]["width"], up["image"]["height"]) ==
            (raw["image"]["height"], raw["image"]["width"]), "the CLI applies the EXIF orientation",
            str(up["image"]))
    ctx.same(g, "exif default", ctx.expect(g, d.post_raw("/v1/faces", rb, "image/jpeg"), "/v1/faces", 200,
                                          "exif default"), up)
    forms("exif=false", {"exif": False}, raw, image=rot, data=rb)


# ---- /v1/verify -----------------------------------------------------------------------------------------

def emb_text(e):
    return ",".join(repr(x) for x in e)


def test_verify(ctx, d):
    g = "verify"
    c = ctx.c
    s1, s2, s3, s5 = SAMPLES[0], SAMPLES[1], SAMPLES[2], SAMPLES[4]
    b1, b2, b5 = s1.read_bytes(), s2.read_bytes(), s5.read_bytes()

    def verify_mp(fields, what, status=200, query=None):
        return ctx.expect(g, d.post_multipart("/v1/verify", fields, query=query), "/v1/verify", status, what)

    def verify_json(doc, what, status=200):
        return ctx.expect(g, d.post_json("/v1/verify", doc), "/v1/verify", status, what)

    # the embeddings /v1/faces returns
    f1 = ctx.expect(g, d.post_raw("/v1/faces", b1, "image/jpeg", query={"embedding": True}), "/v1/faces", 200, "s1")
    f2 = ctx.expect(g, d.post_raw("/v1/faces", b2, "image/jpeg", query={"embedding": True}), "/v1/faces", 200, "s2")
    if not f1 or not f2:
        return
    e1, e2 = f1["faces"][0]["embedding"], f2["faces"][0]["embedding"]

    # images: multipart and JSON equal the CLI; the distance is that of /v1/faces' largest faces
    want = cli_verify(ctx, s1, s2)
    body = verify_mp([("image1", ("a.jpg", b1, "image/jpeg")), ("image2", ("b.jpg", b2, "image/jpeg"))], "multipart")
    ctx.same(g, "multipart image1/image2", body, want)
    if body:
        dd = dist(e1, e2)
        c.check(g, near(body["distance"], dd, DIST_TOL) and near(body["squared_distance"], dd * dd, DIST_TOL),
                "distance = Euclidean distance of /v1/faces' embeddings (largest faces)",
                f"{body['distance']} vs {dd}")
        c.check(g, near(body["distance"] ** 2, body["squared_distance"], 2e-6),
                "squared_distance is the square of distance")
        c.check(g, body["verified"] is False and body["threshold"] == 0.6 and body["metric"] == "euclidean",
                "sample1 vs sample2: different people at the default 0.6", str(strip(body))[:200])
        for side, fd in (("image1", f1), ("image2", f2)):
            bf = body["faces"][side]
            c.check(g, bf["box"] == fd["faces"][0]["box"] and bf["det_score"] == fd["faces"][0]["det_score"]
                    and bf["faces_in_image"] == fd["count"],
                    f"faces.{side}: the largest face of /v1/faces and the face count", f"{bf} vs {fd['faces'][0]['box']}")
    ctx.same(g, "JSON image1_b64/image2_b64", verify_json({"image1_b64": b64(b1), "image2_b64": b64(b2)}, "JSON"), want)
    ctx.same(g, "JSON data: URIs", verify_json({"image1_b64": "data:image/jpeg;base64," + b64(b1),
                                                "image2_b64": b64(b2)}, "JSON data URI"), want)
    dd = want["distance"]

    # embeddings, and one of each
    def check_mixed(what, got, null_sides):
        if got is None:
            return
        c.check(g, near(got["distance"], dd, DIST_TOL) and got["verified"] == want["verified"],
                f"{what}: the same distance and decision", f"{got['distance']} vs {dd}")
        for side in ("image1", "image2"):
            if side in null_sides:
                c.check(g, got["faces"][side] is None, f"{what}: faces.{side} is null (an embedding)")
            else:
                c.check(g, got["faces"][side] == want["faces"][side], f"{what}: faces.{side} as with images")

    check_mixed("JSON embeddings", verify_json({"embedding1": e1, "embedding2": e2}, "embeddings"),
                ("image1", "image2"))
    check_mixed("multipart embeddings as text", verify_mp([("embedding1", "[" + emb_text(e1) + "]"),
                                                          ("embedding2", emb_text(e2))], "embeddings text"),
                ("image1", "image2"))
    check_mixed("multipart image1 + embedding2", verify_mp([("image1", ("a.jpg", b1, "image/jpeg")),
                                                           ("embedding2", emb_text(e2))], "image + embedding"),
                ("image2",))
    check_mixed("JSON embedding1 + image2_b64", verify_json({"embedding1": e1, "image2_b64": b64(b2)},
                                                            "embedding + image"), ("image1",))
    check_mixed("JSON image1_b64 + embedding2", verify_json({"image1_b64": b64(b1), "embedding2": e2},
                                                            "image + embedding"), ("image2",))

    # face_select: best = the highest det_score of /v1/faces (first on ties)
    best = max(range(len(f1["faces"])), key=lambda i: (f1["faces"][i]["det_score"], -i))
    c.check(g, best != 0, "sample1's best face is not its largest (so face_select matters)", str(best))
    want_best = cli_verify(ctx, s1, s2, "--face-select", "best")
    for what, got in (
            ("face_select=best query", verify_mp([("image1", ("a.jpg", b1, "image/jpeg")),
                                                  ("image2", ("b.jpg", b2, "image/jpeg"))],
                                                 "best query", query={"face_select": "best"})),
            ("face_select=best multipart", verify_mp([("face_select", "best"), ("image1", ("a.jpg", b1, "image/jpeg")),
                                                      ("image2", ("b.jpg", b2, "image/jpeg"))], "best multipart")),
            ("face_select=best JSON", verify_json({"image1_b64": b64(b1), "image2_b64": b64(b2),
                                                   "face_select": "best"}, "best JSON"))):
        ctx.same(g, what, got, want_best)
        if got:
            c.check(g, got["faces"]["image1"]["box"] == f1["faces"][best]["box"]
                    and near(got["distance"], dist(f1["faces"][best]["embedding"], e2), DIST_TOL),
                    f"{what}: the best-scoring face of /v1/faces, and its embedding's distance")
    got = verify_json({"image1_b64": b64(b1), "image2_b64": b64(b2), "face_select": "largest"}, "largest JSON")
    ctx.same(g, "face_select=largest (the default)", got, want)

    # match_threshold decides (strictly below) and is echoed
    for t, verified in ((round(dd + 0.01, 4), True), (round(dd - 0.01, 4), False), (0.6, False)):
        want_t = cli_verify(ctx, s1, s2, "--match-threshold", str(t))
        got = verify_json({"embedding1": e1, "image2_b64": b64(b2), "match_threshold": t}, f"threshold {t}")
        if got:
            c.check(g, got["verified"] is verified and got["threshold"] == t and want_t["verified"] is verified
                    and want_t["threshold"] == t,
                    f"match_threshold {t} with distance {dd:.4f}: verified {verified} (CLI too)", str(strip(got))[:160])
        got = verify_mp([("image1", ("a.jpg", b1, "image/jpeg")), ("image2", ("b.jpg", b2, "image/jpeg")),
                         ("match_threshold", str(t))], f"threshold {t} multipart")
        ctx.same(g, f"match_threshold={t} multipart", got, want_t)

    # det_threshold and input_size reach the detector
    want_p = cli_verify(ctx, s5, s3, "--input-size", "224", "--det-threshold", "0.6")
    got = verify_mp([("image1", ("a.jpg", b5, "image/jpeg")), ("image2", ("b.jpg", s3.read_bytes(), "image/jpeg"))],
                    "input_size/det_threshold", query={"input_size": 224, "det_threshold": 0.6})
    ctx.same(g, "input_size=224 det_threshold=0.6", got, want_p)
    f5 = ctx.expect(g, d.post_raw("/v1/faces", b5, "image/jpeg", query={"input_size": 224, "det_threshold": 0.6}),
                    "/v1/faces", 200, "sample5 @224/0.6")
    if got and f5:
        c.check(g, got["faces"]["image1"]["faces_in_image"] == f5["count"]
                and got["faces"]["image1"]["box"] == f5["faces"][0]["box"],
                "input_size/det_threshold: the faces /v1/faces finds with them")

    # aligned chips: the whole image is the face
    chips = sorted(JOHNS.glob("*/*.jpg"))
    if not chips:
        c.check(g, False, f"dlib_johns chips in {JOHNS}")
        return
    a, b = chips[0], chips[1]
    other = next(p for p in chips if p.parent != a.parent)
    descs = {pathlib.Path(x["image"]).name: x["descriptor"] for x in facedump(ctx, [a, b, other], "--aligned")}
    for x, y, same in ((a, b, True), (a, other, False)):
        want_a = cli_verify(ctx, x, y, "--aligned")
        got = verify_mp([("image1", ("x.jpg", x.read_bytes(), "image/jpeg")),
                         ("image2", ("y.jpg", y.read_bytes(), "image/jpeg")), ("aligned", "true")],
                        f"aligned {x.parent.name} vs {y.parent.name}")
        ctx.same(g, f"aligned=true {x.parent.name}/{x.name} vs {y.parent.name}/{y.name}", got, want_a)
        if got:
            ref = dist(descs[x.name], descs[y.name])
            c.check(g, got["verified"] is same and got["faces"] == {"image1": None, "image2": None}
                    and near(got["distance"], ref, DIST_TOL),
                    f"aligned: {'same' if same else 'different'} person, faces null, distance = facedump "
                    f"--aligned's", f"{got['distance']} vs {ref}")
    got = verify_json({"image1_b64": b64(a.read_bytes()), "image2_b64": b64(b.read_bytes()), "aligned": True},
                      "aligned JSON")
    ctx.same(g, "aligned JSON", got, cli_verify(ctx, a, b, "--aligned"))
    # without aligned, the detector finds no face in these tight chips at det_threshold (docs/FACES.md):
    # the one-face fallback takes the best one under it and says so; without the fallback
    # (min_det_threshold = det_threshold) it is 422 naming the image
    chip = [("image1", ("x.jpg", a.read_bytes(), "image/jpeg")), ("image2", ("y.jpg", b1, "image/jpeg"))]
    got = verify_mp(chip, "chip without aligned")
    c.check(g, got is not None and got["faces"]["image1"]["fallback"] is True and
            got["faces"]["image1"]["det_score"] < 0.5, "a chip without aligned=true: the fallback face", str(got))
    got = verify_mp(chip + [("min_det_threshold", "0.5")], "chip without aligned, no fallback", status=422)
    c.check(g, got is not None and got["error"]["field"] == "image1",
            "a chip without aligned=true and min_det_threshold 0.5: NO_FACE image1", str(got))


def test_verify_errors(ctx, d):
    g = "verify-errors"
    c = ctx.c
    s2b, dogb = SAMPLES[1].read_bytes(), DOG.read_bytes()
    f2 = ctx.expect(g, d.post_raw("/v1/faces", s2b, "image/jpeg", query={"embedding": True}), "/v1/faces", 200, "s2")
    e2 = f2["faces"][0]["embedding"] if f2 else [0.0] * 128

    def err(what, r, status, code, field, path="/v1/verify"):
        body = ctx.expect(g, r, path, status, what)
        e = body["error"] if body and "error" in body else {}
        ok = e.get("code") == code and e.get("field") == field and str(e.get("message", "")).startswith(field + ": ")
        c.check(g, ok, f"{what}: {status} {code} naming {field}", str(body))
        return e

    # no face: 422 NO_FACE naming the image, whatever the form
    e = err("no face in image1 (multipart)", d.post_multipart("/v1/verify", [
        ("image1", ("dog.jpg", dogb, "image/jpeg")), ("image2", ("s.jpg", s2b, "image/jpeg"))]), 422, "NO_FACE", "image1")
    c.check(g, "no face" in e.get("message", ""), "the NO_FACE message says so", str(e))
    err("no face in image2 (multipart)", d.post_multipart("/v1/verify", [
        ("image1", ("s.jpg", s2b, "image/jpeg")), ("image2", ("dog.jpg", dogb, "image/jpeg"))]), 422, "NO_FACE", "image2")
    err("no face in image2 (JSON)", d.post_json("/v1/verify", {"image1_b64": b64(s2b), "image2_b64": b64(dogb)}),
        422, "NO_FACE", "image2")
    err("no face in image1 (JSON, other side an embedding)",
        d.post_json("/v1/verify", {"image1_b64": b64(dogb), "embedding2": e2}), 422, "NO_FACE", "image1")
    p = cli(ctx, "verify", "--models-dir", "models", SAMPLES[1], DOG, ok=False)
    line = json.loads(p.stdout) if p.stdout.strip() else {}
    c.check(g, p.returncode == 1 and line.get("image") == str(DOG) and line.get("error", {}).get("code") == "NO_FACE"
            and line["error"].get("field") == "image2" and str(DOG) in p.stderr,
            "CLI verify with no face in B: exit 1, JSON error line and message naming the image",
            f"exit {p.returncode}: {p.stdout} {p.stderr}")

    # one side missing: 400 naming the field
    err("multipart without image2", d.post_multipart("/v1/verify", [("image1", ("s.jpg", s2b, "image/jpeg"))]),
        400, "BAD_REQUEST", "image2")
    err("multipart without image1", d.post_multipart("/v1/verify", [("image2", ("s.jpg", s2b, "image/jpeg"))]),
        400, "BAD_REQUEST", "image1")
    err("JSON without image2_b64", d.post_json("/v1/verify", {"image1_b64": b64(s2b)}), 400, "BAD_REQUEST",
        "$.image2_b64")
    err("JSON without image1_b64", d.post_json("/v1/verify", {"image2_b64": b64(s2b), "match_threshold": 0.5}),
        400, "BAD_REQUEST", "$.image1_b64")
    err("JSON embedding1 only", d.post_json("/v1/verify", {"embedding1": e2}), 400, "BAD_REQUEST", "$.embedding2")
    err("multipart embedding1 only", d.post_multipart("/v1/verify", [("embedding1", emb_text(e2))]), 400,
        "BAD_REQUEST", "embedding2")
    err("a side given twice (image1 and embedding1)", d.post_json("/v1/verify", {
        "image1_b64": b64(s2b), "embedding1": e2, "embedding2": e2}), 400, "INVALID_PARAM", "$.embedding1")
    err("embedding of 127 numbers", d.post_json("/v1/verify", {"embedding1": e2[:127], "embedding2": e2}), 400,
        "INVALID_PARAM", "$.embedding1")
    err("bare threshold is ambiguous", d.post_json("/v1/verify", {"embedding1": e2, "embedding2": e2,
                                                                  "threshold": 0.5}), 400, "INVALID_PARAM", "$.threshold")
    err("raw body on /v1/verify", d.post_raw("/v1/verify", s2b, "image/jpeg"), 415, "UNSUPPORTED_MEDIA_TYPE",
        "Content-Type")


def test_deepstack(ctx, d):
    g = "deepstack"
    c = ctx.c
    for img in (SAMPLES[0], SAMPLES[4]):
        data = img.read_bytes()
        for conf in (None, 0.7):
            fields = [("image", (img.name, data, "image/jpeg"))] + ([("min_confidence", str(conf))] if conf else [])
            body = ctx.expect(g, d.post_multipart("/v1/vision/face", fields), "/v1/vision/face", 200,
                              f"{img.name} min_confidence={conf}")
            ref = ctx.expect(g, d.post_raw("/v1/faces", data, "image/jpeg",
                                           query={"det_threshold": conf or DEEPSTACK_FACE_CONF}), "/v1/faces", 200,
                             img.name)
            if not body or not ref:
                continue
            w, h = ref["image"]["width"], ref["image"]["height"]
            ok = (body["success"] is True and body["count"] == ref["count"] == len(body["predictions"]) and
                  isinstance(body.get("duration"), int) and body["duration"] >= 0)
            for p, f in zip(body["predictions"], ref["faces"]):
                b = f["box"]
                ok = ok and p["confidence"] == f["det_score"]
                for k, v, hi in (("x_min", b["x1"], w), ("y_min", b["y1"], h), ("x_max", b["x2"], w),
                                 ("y_max", b["y2"], h)):
                    lo_v, hi_v = math.floor(min(max(v - 0.006, 0), hi)), math.floor(min(max(v + 0.006, 0), hi))
                    ok = ok and lo_v <= p[k] <= hi_v
            c.check(g, ok, f"{img.name} min_confidence={conf}: /v1/faces' faces (det_threshold) in DeepStack's "
                    f"shape, largest first", f"{body['predictions'][:2]} vs {ref['faces'][:2]}")
    s1, s2 = SAMPLES[0].read_bytes(), SAMPLES[1].read_bytes()
    v = ctx.expect(g, d.post_multipart("/v1/verify", [("image1", ("a.jpg", s1, "image/jpeg")),
                                                      ("image2", ("b.jpg", s2, "image/jpeg"))]), "/v1/verify", 200, "v")
    body = ctx.expect(g, d.post_multipart("/v1/vision/face/match", [("image1", ("a.jpg", s1, "image/jpeg")),
                                                                    ("image2", ("b.jpg", s2, "image/jpeg")),
                                                                    ("api_key", "ignored-without-keys"),
                                                                    ("unknown_field", "ignored")]),
                      "/v1/vision/face/match", 200, "sample1 vs sample2")
    if body and v:
        want = similarity(math.sqrt(v["squared_distance"]))
        c.check(g, body["success"] is True and near(body["similarity"], want, 2e-6) and body["similarity"] < 0.67 and
                v["verified"] is False and isinstance(body.get("duration"), int),
                "face/match similarity = 0.67^(distance / 0.6), < 0.67 when not verified; duration",
                f"{body} vs {want}")
    chips = sorted(JOHNS.glob("*/*.jpg"))
    if len(chips) >= 2:
        body = ctx.expect(g, d.post_multipart("/v1/vision/face/match", [
            ("image1", ("a.jpg", chips[0].read_bytes(), "image/jpeg")),
            ("image2", ("b.jpg", chips[1].read_bytes(), "image/jpeg")), ("aligned", "true")]),
            "/v1/vision/face/match", 200, "aligned chips of one person")
        c.check(g, body is not None and body["similarity"] > 0.67, "same person: similarity > 0.67", str(body))
    for what, path, fields, status in (
            ("match without a face", "/v1/vision/face/match",
             [("image1", ("dog.jpg", DOG.read_bytes(), "image/jpeg")), ("image2", ("b.jpg", s2, "image/jpeg"))], 422),
            ("match without image2", "/v1/vision/face/match", [("image1", ("a.jpg", s1, "image/jpeg"))], 400),
            ("face without an image", "/v1/vision/face", [("min_confidence", "0.5")], 400),
            ("face with a truncated JPEG", "/v1/vision/face", [("image", ("t.jpg", s1[:5000], "image/jpeg"))], 400)):
        body = ctx.expect(g, d.post_multipart(path, fields), path, status, what)
        c.check(g, body is not None and body.get("success") is False and body.get("code") == status
                and isinstance(body.get("error"), str), f"{what}: {status} in DeepStack's shape", str(body))
        if status == 422 and body:
            c.check(g, "image1" in body["error"], "DeepStack NO_FACE names the image", body["error"])


def test_fallback(ctx, d):
    """The one-face fallback: ../shared/images/scream.jpg's only face scores about 0.16, under the default
    det_threshold 0.5; /v1/verify takes it (fallback true, its det_score = /v1/faces' at 0.1) instead of
    NO_FACE, unless min_det_threshold is above it; a photo without a person stays NO_FACE."""
    g = "fallback"
    c = ctx.c
    scream = (daemon.SHARED / "images" / "scream.jpg").read_bytes()
    s1 = SAMPLES[0].read_bytes()
    low = ctx.expect(g, d.post_raw("/v1/faces", scream, "image/jpeg", query={"det_threshold": 0.1}), "/v1/faces",
                     200, "scream.jpg at 0.1")
    none = ctx.expect(g, d.post_raw("/v1/faces", scream, "image/jpeg"), "/v1/faces", 200, "scream.jpg at 0.5")
    if not low or none is None:
        return
    c.check(g, low["count"] >= 1 and none["count"] == 0 and 0.1 <= low["faces"][0]["det_score"] < 0.5,
            "scream.jpg: no face at 0.5, one between 0.1 and 0.5", f"{low['count']} {none['count']}")
    best = max(low["faces"], key=lambda f: f["det_score"])
    fields = [("image1", ("scream.jpg", scream, "image/jpeg")), ("image2", ("s1.jpg", s1, "image/jpeg"))]
    v = ctx.expect(g, d.post_multipart("/v1/verify", fields), "/v1/verify", 200, "scream.jpg vs sample1")
    if v:
        f1, f2 = v["faces"]["image1"], v["faces"]["image2"]
        c.check(g, f1["fallback"] is True and f1["det_score"] == best["det_score"] and f1["box"] == best["box"]
                and f2["fallback"] is False and f1["faces_in_image"] == low["count"],
                "image1 took its best face under det_threshold, fallback true with its det_score; image2 false",
                f"{f1} vs {best}")
    e = ctx.expect(g, d.post_multipart("/v1/verify", fields, query={"min_det_threshold": 0.3}), "/v1/verify",
                   422, "min_det_threshold 0.3")
    c.check(g, e is not None and e["error"]["code"] == "NO_FACE" and e["error"]["field"] == "image1",
            "with min_det_threshold above its score: NO_FACE image1", str(e))
    m = ctx.expect(g, d.post_multipart("/v1/vision/face/match", fields), "/v1/vision/face/match", 200,
                   "DeepStack face/match falls back too")
    c.check(g, m is not None and m.get("success") is True, "face/match answers with the fallback face", str(m))
    e = ctx.expect(g, d.post_multipart("/v1/verify", [("image1", ("dog.jpg", DOG.read_bytes(), "image/jpeg")),
                                                      ("image2", ("s1.jpg", s1, "image/jpeg"))]), "/v1/verify",
                   422, "dog.jpg")
    c.check(g, e is not None and e["error"]["code"] == "NO_FACE", "dog.jpg (no face even at 0.1): NO_FACE", str(e))


def test_main_daemon(ctx):
    with daemon.Daemon(ctx.visiond) as d:
        m = re.search(r"BLAS (\w+) x", d.stderr())
        ctx.blas_core = m.group(1) if m else None
        r = d.wait_ready()
        ctx.c.check("startup", r.status == 200, "with the face models installed /readyz is 200", repr(r))
        test_faces_forms(ctx, d)
        test_faces_params(ctx, d)
        test_verify(ctx, d)
        test_verify_errors(ctx, d)
        test_deepstack(ctx, d)
        test_fallback(ctx, d)
        code, err = d.stop()
    ctx.c.check("lifecycle", code == 0, "the daemon exits 0 on SIGTERM", f"exit {code}")
    ctx.c.check("lifecycle", not daemon.sanitizer_report(err), "no sanitizer report", daemon.sanitizer_report(err))


# ---- start-up with broken face models ---------------------------------------------------------------------

def models_copy(ctx, name):
    """A models folder: the YOLO models (symlinked) and a copy of faces/ without the npm package."""
    root = ctx.tmp / name
    root.mkdir()
    for p in (ROOT / "models").iterdir():
        if p.is_dir() and p.name != "faces":
            (root / p.name).symlink_to(p.resolve())
    (root / "faces").mkdir()
    for p in FACES.iterdir():
        if p.is_file():
            shutil.copy(p, root / "faces" / p.name)
    return root


def test_startup(ctx):
    g = "startup"
    c = ctx.c
    det_manifest = "tiny_face_detector_model-weights_manifest.json"
    lm_manifest = "face_landmark_68_model-weights_manifest.json"
    rec_bin = "face_recognition_model.bin"

    def corrupt_manifest(root):
        (root / "faces" / lm_manifest).write_text('[{"paths": ["face_landmark_68_model.bin"], "weights": [{')
        return lm_manifest

    def renamed_tensor(root):
        p = root / "faces" / det_manifest
        p.write_text(p.read_text().replace('"conv0/filters"', '"conv0/filterz"', 1))
        return "conv0/filters"

    def truncated_bin(root):
        p = root / "faces" / rec_bin
        p.write_bytes(p.read_bytes()[:1000000])
        return "conv64_3/conv1/conv/filters"  # the tensor that crosses the 1000000th byte

    def no_faces(root):
        shutil.rmtree(root / "faces")
        return None

    dog = DOG.read_bytes()
    s1 = SAMPLES[0].read_bytes()
    for name, breaker in (("corrupt-manifest", corrupt_manifest), ("renamed-tensor", renamed_tensor),
                          ("truncated-bin", truncated_bin), ("no-faces", no_faces)):
        root = models_copy(ctx, name)
        reason = breaker(root)
        with daemon.Daemon(ctx.visiond, "--models", str(root)) as d:
            errors = [x for x in d.log_records() if x.get("level") == "error"]
            if reason:
                c.check(g, any(reason in x.get("msg", "") for x in errors),
                        f"{name}: an error line naming {reason}", str(errors or d.stderr()[-800:]))
            r = d.get("/readyz")
            body = ctx.expect(g, r, "/readyz", 503 if reason else 200, f"{name}", method="GET")
            if reason:
                c.check(g, body is not None and body["error"]["code"] == "NOT_READY"
                        and reason in body["error"]["message"], f"{name}: /readyz 503 NOT_READY with the reason",
                        str(body))
            r = d.post_raw("/v1/detect", dog, "image/jpeg")
            body = ctx.expect(g, r, "/v1/detect", 200, f"{name}: YOLO still served")
            c.check(g, body is not None and body["count"] > 0, f"{name}: /v1/detect finds objects", str(body)[:200])
            body = ctx.expect(g, d.get("/v1/models"), "/v1/models", 200, f"{name}: models", method="GET")
            if body:
                kinds = {m["kind"] for m in body["models"]}
                c.check(g, kinds == {"yolo"}, f"{name}: /v1/models lists the YOLO models only", str(kinds))
            for path, send in (
                    ("/v1/faces", lambda: d.post_raw("/v1/faces", s1, "image/jpeg")),
                    ("/v1/verify", lambda: d.post_json("/v1/verify", {"image1_b64": b64(s1), "image2_b64": b64(s1)})),
                    ("/v1/vision/face", lambda: d.post_multipart("/v1/vision/face",
                                                                 [("image", ("a.jpg", s1, "image/jpeg"))])),
                    ("/v1/vision/face/match", lambda: d.post_multipart("/v1/vision/face/match", [
                        ("image1", ("a.jpg", s1, "image/jpeg")), ("image2", ("b.jpg", s1, "image/jpeg"))]))):
                body = ctx.expect(g, send(), path, 503, f"{name}")
                msg = (body.get("error") if "vision" in path else body.get("error", {}).get("message")) if body else ""
                want = reason or "not installed"
                c.check(g, body is not None and want in str(msg), f"{name}: {path} 503 saying why ({want})", str(body))
            code, err = d.stop()
        c.check(g, code == 0, f"{name}: exits 0 on SIGTERM", f"exit {code}")
        c.check(g, not daemon.sanitizer_report(err), f"{name}: no sanitizer report", daemon.sanitizer_report(err))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--facedump", help="visiond_facedump (default: next to --visiond, in tests/)")
    args = ap.parse_args()
    visiond = pathlib.Path(args.visiond).resolve()
    facedump = pathlib.Path(args.facedump).resolve() if args.facedump else visiond.parent / "tests" / "visiond_facedump"
    if not (FACES / "face_recognition_model-weights_manifest.json").exists() or len(SAMPLES) < 6:
        print(f"SKIP: no face models or demo photos in {FACES} (scripts/fetch-models)")
        return 77
    if not facedump.exists():
        print(f"FAIL: visiond_facedump not found at {facedump} (pass --facedump)")
        return 1
    ctx = Ctx(visiond, facedump)
    try:
        test_main_daemon(ctx)
        test_startup(ctx)
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return ctx.c.summary("test_http_faces")


if __name__ == "__main__":
    sys.exit(main())
