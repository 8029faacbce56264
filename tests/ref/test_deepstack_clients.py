#!/usr/bin/python3
"""The request/response contract of the real DeepStack clients, replayed request by request against a live
`visiond serve` (issue 14). Requests go out through python3-requests, the HTTP library those clients use,
in the form each one sends; answers are parsed the way each one parses them, and validated against
proto/openapi.yaml.

  deepstack-python  DeepstackObject.detect: POST /v1/vision/detection, files={"image": bytes} (a part
                    named and filed "image", no content type), data={"api_key": ""}, no min_confidence:
                    200, response["predictions"], every label one of COCO's 80 names, integer corners,
                    DeepStack's default 0.40 applied (equal to /v1/detect at conf 0.4);
                    with custom_model=M: POST /v1/vision/custom/M, the same for the named model; an
                    unknown M is 404 (the client's "Bad url"), in DeepStack's shape;
                    DeepstackFace.detect: POST /v1/vision/face, confidences >= 0.55 (DeepStack's default)
  Frigate           its DeepStack plugin's detect_raw: a JPEG of the model-sized frame, data api_key;
                    the loop that stops at the first confidence < 0.4 or the first label its COCO-91
                    labelmap does not know (truck read as car): it must never stop on a label, for any
                    class the model can report on this route (/v1/models deepstack_classes)
  Home Assistant    deepstack_object's get_objects over the predictions and the image size: relative
                    boxes in [0, 1], object types person/animal/vehicle/other; motorcycle and airplane
                    are vehicles
  Blue Iris         GET and POST /v1/vision/custom/list: {"success": true, "models": [names]}, then
                    POST /v1/vision/custom/NAME for each listed name
  Double Take       reads `success` first: any answer under /v1/vision/, 404s included, has it
  routes            trailing slashes on /v1/vision/...; /v1/vision/scene: 404 in DeepStack's shape saying
                    no scene model is served; the design card's POST /detect, /faces, /verify equal the
                    /v1/ routes
usage: test_deepstack_clients.py --visiond build/visiond   (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without python3-requests/-yaml/-jsonschema/-opencv or
the models.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

try:
    import cv2
    import jsonschema  # noqa: F401
    import numpy as np  # noqa: F401
    import requests
    import yaml  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (needs Debian's python3-requests, -yaml, -jsonschema, -opencv: /usr/bin/python3)")
    sys.exit(77)

IMAGES = daemon.SHARED / "images"
FACE_DEMO = daemon.ROOT / "models" / "faces" / "package" / "demo"

# The 80 category names of the COCO annotations (instances_*.json), in category-id order.
COCO80 = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
          "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
          "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag",
          "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
          "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork",
          "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
          "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv",
          "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
          "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"]

# Frigate's default labelmap: COCO's 91 paper categories in id order, the 11 without annotations
# included, "truck" left out (its plugin reads truck as car), numbered from 0.
_COCO91_EXTRA = {12: "street sign", 26: "hat", 29: "shoe", 30: "eye glasses", 45: "plate", 66: "mirror",
                 68: "window", 69: "desk", 71: "door", 83: "blender", 91: "hair brush"}


def frigate_labelmap():
    it = iter(COCO80)
    coco91 = [_COCO91_EXTRA[cid] if cid in _COCO91_EXTRA else next(it) for cid in range(1, 92)]
    return dict(enumerate(n for n in coco91 if n != "truck"))


def frigate_label_index(labels, label):
    """Frigate's lookup: lower-cased, truck read as car; -1 when its labelmap lacks the label."""
    label = "car" if label.lower() == "truck" else label.lower()
    for index, value in labels.items():
        if value == label:
            return index
    return -1


# Home Assistant's deepstack_object object types
HA_ANIMALS = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
HA_VEHICLES = {"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck"}


def ha_object_type(name):
    return "person" if name == "person" else "animal" if name in HA_ANIMALS else \
        "vehicle" if name in HA_VEHICLES else "other"


def ha_get_objects(predictions, width, height):
    """deepstack_object's parsing: relative boxes rounded to 3 places, centroid, type, confidence in %."""
    out = []
    for p in predictions:
        box = {"height": round((p["y_max"] - p["y_min"]) / height, 3),
               "width": round((p["x_max"] - p["x_min"]) / width, 3),
               "y_min": round(p["y_min"] / height, 3), "x_min": round(p["x_min"] / width, 3),
               "y_max": round(p["y_max"] / height, 3), "x_max": round(p["x_max"] / width, 3)}
        out.append({"bounding_box": box, "box_area": round(box["height"] * box["width"], 3),
                    "centroid": {"x": round(box["x_min"] + box["width"] / 2, 3),
                                 "y": round(box["y_min"] + box["height"] / 2, 3)},
                    "name": p["label"], "object_type": ha_object_type(p["label"]),
                    "confidence": round(p["confidence"] * 100, 3)})
    return out


class Clients:
    def __init__(self, d):
        self.d = d
        self.base = f"http://127.0.0.1:{d.port}"
        self.api = daemon.OpenApi()
        self.c = daemon.Checks()

    def post(self, path, image, data=None, doc_path=None, files=None):
        """requests.post as the clients call it; returns (status, parsed JSON or None)."""
        r = requests.post(self.base + path, files=files or {"image": image}, data=data or {}, timeout=120)
        return self.answer("POST", path, r, doc_path)

    def answer(self, method, path, r, doc_path=None):
        try:
            body = r.json()
        except ValueError:
            self.c.check("json", False, f"{method} {path}: JSON answer", r.text[:200])
            return r.status_code, None
        problems = self.api.validate(doc_path or path, method, r.status_code, body)
        self.c.check("openapi", not problems, f"{method} {path} {r.status_code}", "; ".join(problems[:3]))
        return r.status_code, body

    def native(self, image, **query):
        r = self.d.post_raw("/v1/detect", image, "image/jpeg", query=query)
        return r.json()

    def predictions_ok(self, group, what, preds, min_conf):
        ok = isinstance(preds, list) and all(
            p["label"] in COCO80 and all(isinstance(p[k], int) for k in ("x_min", "y_min", "x_max", "y_max"))
            and p["confidence"] >= min_conf for p in preds)
        self.c.check(group, ok, f"{what}: COCO labels, integer corners, confidence >= {min_conf}", str(preds)[:300])

    # ---- deepstack-python ----------------------------------------------------------------------------

    def deepstack_python(self, models):
        g = "deepstack-python"
        for name in ("dog.jpg", "horses.jpg", "person.jpg"):
            img = (IMAGES / name).read_bytes()
            status, body = self.post("/v1/vision/detection", img, {"api_key": ""})
            if not self.c.check(g, status == 200 and body and body["success"] is True,
                                f"DeepstackObject.detect({name}): 200", f"{status} {body}"):
                continue
            preds = body["predictions"]
            self.predictions_ok(g, f"detect({name})", preds, 0.40)
            ref = self.native(img, conf=0.4)["detections"]
            self.c.check(g, len(preds) == len(ref) and all(p["confidence"] == x["confidence"] for p, x in zip(preds, ref)),
                         f"detect({name}) without min_confidence = /v1/detect at conf 0.4 (DeepStack's default)",
                         f"{len(preds)} vs {len(ref)}")
            summary = {lab: sum(p["label"] == lab for p in preds) for lab in sorted({p["label"] for p in preds})}
            print(f"  {g:17} detect({name}): {summary}")
        img = (IMAGES / "dog.jpg").read_bytes()
        for m in models:
            status, body = self.post(f"/v1/vision/custom/{m}", img, {"api_key": ""},
                                     doc_path="/v1/vision/custom/{model}")
            if not self.c.check(g, status == 200 and body and body["success"] is True,
                                f"DeepstackObject(custom_model={m!r}).detect: 200", f"{status} {body}"):
                continue
            self.predictions_ok(g, f"custom {m}", body["predictions"], 0.40)
            ref = self.native(img, model=m, conf=0.4)["detections"]
            self.c.check(g, [p["confidence"] for p in body["predictions"]] == [x["confidence"] for x in ref],
                         f"custom/{m} = /v1/detect?model={m}&conf=0.4", f"{body['predictions']} vs {ref}")
            print(f"  {g:17} custom_model={m}: {sorted(p['label'] for p in body['predictions'])}")
        status, body = self.post("/v1/vision/custom/no-such-model", img, {"api_key": ""},
                                 doc_path="/v1/vision/custom/{model}")
        self.c.check(g, status == 404 and body and body.get("success") is False and body.get("code") == 404,
                     "custom_model='no-such-model': 404 (the client's 'Bad url'), DeepStack's shape", f"{status} {body}")
        samples = sorted(FACE_DEMO.glob("sample*.jpg"))
        if not samples:
            self.c.check(g, False, "face demo photos in models/faces/package/demo (scripts/fetch-models)")
            return
        for s in samples[:2]:
            status, body = self.post("/v1/vision/face", s.read_bytes(), {"api_key": ""})
            ok = status == 200 and body and body["success"] is True and body["predictions"] and all(
                p["confidence"] >= 0.55 and all(isinstance(p[k], int) for k in ("x_min", "y_min", "x_max", "y_max"))
                for p in body["predictions"])
            self.c.check(g, ok, f"DeepstackFace.detect({s.name}): faces, confidence >= 0.55, integer corners",
                         f"{status} {body}")
            ref = self.d.post_raw("/v1/faces", s.read_bytes(), "image/jpeg", query={"det_threshold": 0.55}).json()
            self.c.check(g, body and len(body["predictions"]) == ref["count"],
                         f"DeepstackFace.detect({s.name}) = /v1/faces at det_threshold 0.55",
                         f"{body and len(body['predictions'])} vs {ref['count']}")

    # ---- Frigate ---------------------------------------------------------------------------------------

    def frigate(self, deepstack_classes):
        g = "frigate"
        labels = frigate_labelmap()
        unknown = [lab for lab in deepstack_classes if frigate_label_index(labels, lab) < 0]
        self.c.check(g, not unknown, "every label the DeepStack route can report is in Frigate's labelmap",
                     str(unknown))
        for name in ("dog.jpg", "horses.jpg", "person.jpg"):
            frame = cv2.resize(cv2.imread(str(IMAGES / name)), (320, 320))
            ok, jpg = cv2.imencode(".jpg", frame)
            status, body = self.post("/v1/vision/detection", jpg.tobytes(), {"api_key": ""})
            preds = body.get("predictions") if body else None
            if not self.c.check(g, status == 200 and preds is not None, f"detect_raw({name}): predictions",
                                f"{status} {body}"):
                continue
            rows, stopped = [], None
            for p in preds:
                if p["confidence"] < 0.4:
                    stopped = "confidence"
                    break
                idx = frigate_label_index(labels, p["label"])
                if idx < 0:
                    stopped = f"unknown label {p['label']!r}"
                    break
                rows.append([idx, p["confidence"], p["y_min"] / 320, p["x_min"] / 320, p["y_max"] / 320,
                             p["x_max"] / 320])
            self.c.check(g, stopped is None and len(rows) == len(preds) and len(rows) > 0 and
                         all(0 <= v <= 1 for r in rows for v in r[2:]),
                         f"detect_raw({name}): every prediction becomes a detection row", f"stopped: {stopped}")
            print(f"  {g:17} detect_raw({name}): {len(rows)} rows, labels "
                  f"{sorted({labels[r[0]] for r in rows})}")

    # ---- Home Assistant --------------------------------------------------------------------------------

    def home_assistant(self, deepstack_classes):
        g = "home-assistant"
        types = {lab: ha_object_type(lab) for lab in deepstack_classes}
        self.c.check(g, all(types.get(v) == "vehicle" for v in HA_VEHICLES),
                     "all 7 of its vehicle names are labels the route reports (motorcycle, airplane included)",
                     str({v: types.get(v) for v in HA_VEHICLES}))
        self.c.check(g, all(types.get(a) == "animal" for a in HA_ANIMALS), "all 10 animal names reported")
        img = (IMAGES / "dog.jpg").read_bytes()
        status, body = self.post("/v1/vision/detection", img, {"api_key": "", "min_confidence": 0.1})
        if not self.c.check(g, status == 200 and body, "process_image(dog.jpg): 200", f"{status} {body}"):
            return
        objs = ha_get_objects(body["predictions"], 768, 576)
        ok = all(0 <= o["bounding_box"][k] <= 1 for o in objs for k in ("x_min", "y_min", "x_max", "y_max")) and \
            all(0 < o["confidence"] <= 100 for o in objs)
        self.c.check(g, ok and any(o["name"] == "dog" and o["object_type"] == "animal" for o in objs) and
                     any(o["object_type"] == "vehicle" for o in objs),
                     "get_objects(dog.jpg): relative boxes, a dog (animal) and a vehicle", str(objs)[:300])
        print(f"  {g:17} get_objects(dog.jpg): {sorted((o['name'], o['object_type']) for o in objs)}")

    # ---- Blue Iris / CodeProject.AI custom models --------------------------------------------------------

    def custom_list(self, models):
        g = "blue-iris"
        listed = None
        for method in ("GET", "POST"):
            r = requests.request(method, self.base + "/v1/vision/custom/list", timeout=30)
            status, body = self.answer(method, "/v1/vision/custom/list", r)
            ok = status == 200 and body and body.get("success") is True and isinstance(body.get("models"), list)
            self.c.check(g, ok, f"{method} /v1/vision/custom/list: success and models", f"{status} {body}")
            if ok:
                listed = body["models"]
        self.c.check(g, listed is not None and sorted(listed) == sorted(models),
                     "custom/list names every detection model", f"{listed} vs {models}")
        print(f"  {g:17} custom/list: {listed}")

    # ---- Double Take, routes ---------------------------------------------------------------------------

    def shapes_and_routes(self):
        g = "routes"
        img = (IMAGES / "dog.jpg").read_bytes()
        for path in ("/v1/vision/face/recognize-nothing", "/v1/vision/nope", "/v1/vision/custom"):
            r = requests.post(self.base + path, files={"image": img}, timeout=60)
            body = r.json()
            self.c.check("double-take", r.status_code == 404 and body.get("success") is False and
                         body.get("code") == 404 and isinstance(body.get("error"), str),
                         f"POST {path}: 404 with success false (DeepStack's shape)", f"{r.status_code} {body}")
        status, body = self.post("/v1/vision/scene", img, {"api_key": ""})
        self.c.check(g, status == 404 and body and body.get("success") is False and body.get("code") == 404 and
                     "scene" in body.get("error", ""), "/v1/vision/scene: 404 saying no scene model is served",
                     f"{status} {body}")
        for path in ("/v1/vision/detection/", "/v1/vision/face/", "/v1/vision/custom/list/"):
            r = requests.post(self.base + path, files={"image": img}, timeout=120)
            self.c.check(g, r.status_code == 200 and r.json().get("success") is True,
                         f"POST {path} (trailing slash): 200", f"{r.status_code} {r.text[:200]}")
        r1 = self.d.post_multipart("/detect", [("image", ("dog.jpg", img, "image/jpeg"))])
        r2 = self.d.post_multipart("/v1/detect", [("image", ("dog.jpg", img, "image/jpeg"))])
        a, b = r1.json(), r2.json()
        self.c.check(g, r1.status == 200 and a.get("detections") == b.get("detections") and
                     any(x["label"] == "dog" for x in a.get("detections", [])),
                     "POST /detect = POST /v1/detect, finds the dog", f"{r1.status} {str(a)[:200]}")
        problems = self.api.validate("/detect", "POST", r1.status, a)
        self.c.check("openapi", not problems, "POST /detect", "; ".join(problems[:3]))
        samples = sorted(FACE_DEMO.glob("sample*.jpg"))
        if len(samples) >= 2:
            s1, s2 = samples[0].read_bytes(), samples[1].read_bytes()
            for alias, native, fields in (
                    ("/faces", "/v1/faces", [("image", ("a.jpg", s1, "image/jpeg"))]),
                    ("/verify", "/v1/verify", [("image1", ("a.jpg", s1, "image/jpeg")),
                                               ("image2", ("b.jpg", s2, "image/jpeg"))])):
                ra, rn = self.d.post_multipart(alias, fields), self.d.post_multipart(native, fields)
                a, n = ra.json(), rn.json()
                for k in ("timing_ms", "request_id"):
                    a.pop(k, None)
                    n.pop(k, None)
                self.c.check(g, ra.status == 200 and a == n, f"POST {alias} = POST {native}",
                             f"{ra.status} {str(a)[:200]}")
                problems = self.api.validate(alias, "POST", ra.status, ra.json())
                self.c.check("openapi", not problems, f"POST {alias}", "; ".join(problems[:3]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (IMAGES / "dog.jpg").is_file():
        print(f"SKIP: no {IMAGES}")
        return 77
    with daemon.Daemon(args.visiond) as d:
        t = Clients(d)
        info = d.get("/v1/models").json()["models"]
        yolo = [m for m in info if m.get("kind") == "yolo"]
        models = [m["name"] for m in yolo]
        classes = next((m["deepstack_classes"] for m in yolo if m["default"]), [])
        t.c.check("models", bool(yolo) and all(m.get("coco80") for m in yolo),
                  "/v1/models: the detection models are COCO-80", str([(m["name"], m.get("coco80")) for m in yolo]))
        t.c.check("models", sorted(classes) == sorted(COCO80), "default model's deepstack_classes are COCO's 80",
                  str(sorted(set(classes) ^ set(COCO80))))
        native = next((m["classes"] for m in yolo if m["default"]), [])
        t.c.check("models", "motorbike" in native and "motorcycle" in classes,
                  "/v1/models shows both spellings (classes: motorbike, deepstack_classes: motorcycle)")
        t.deepstack_python(models)
        t.frigate(classes)
        t.home_assistant(classes)
        t.custom_list(models)
        t.shapes_and_routes()
        return t.c.summary("test_deepstack_clients")


if __name__ == "__main__":
    sys.exit(main())
