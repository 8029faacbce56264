#!/usr/bin/python3
"""The gallery's native routes end to end, their bad input (issue 15, acceptance 6) and access rules.

  routes     create, list (paged), get, rename, enrol (photos: multipart with several files, raw body;
             embeddings: JSON), list faces, delete a face, identify (photo and embedding), delete a
             subject; every answer validated against proto/openapi.yaml
  unknown    identify answers `match: null` for a face of nobody enrolled, with its candidates
  bad input  unknown subject 404, duplicate 409, empty / 129-byte / '/' / control-character names 400,
             unknown face id 404, embedding of 127 numbers 400, NaN 400, another model's fingerprint 422,
             a photo with no face 422 NO_FACE naming it, a photo with two faces 422 MULTIPLE_FACES; after
             each refusal the gallery is unchanged (nothing half-written: a request whose second photo
             fails adds no face)
  access     with a keys file: inference key -> 403 on every write, 200 on reads; admin key writes;
             no key 401
  logs       names never appear in the daemon's log at info level

usage: test_gallery_api.py --visiond build/visiond
Exit 0 if all pass, 1 on any failure, 77 (skipped) without the face models or chips.
"""
import argparse
import base64
import hashlib
import json
import pathlib
import sys
import tempfile
import urllib.parse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

ROOT = daemon.ROOT
JOHNS = daemon.SHARED / "faces" / "dlib_johns"
DEMO = ROOT / "models" / "faces" / "package" / "demo"
DOG = daemon.SHARED / "images" / "dog.jpg"
SCREAM = daemon.SHARED / "images" / "scream.jpg"
DEMO_ONE = DEMO / "sample2.jpg"
INFER_KEY = "gallery-infer-key-0123456789"
ADMIN_KEY = "gallery-admin-key-9876543210"
SECRET_NAME = "Zoë Secretname"


def q(name):
    return urllib.parse.quote(name, safe="")


def test_fallback(d, c, ok, err):
    """Issue 14 item 4, enrolment's one-face fallback: scream.jpg's only face scores about 0.16 (under the
    default det_threshold 0.5) and enrols with fallback true and its det_score (/v1/faces' at 0.1); not above
    min_det_threshold=0.5 it is NO_FACE; dog.jpg stays NO_FACE even at the floor; DeepStack's register
    enrols through the same code; min_det_threshold's bounds and message are /v1/verify's."""
    scream = SCREAM.read_bytes()
    path = "/v1/subjects/{name}/faces"
    ok(d.post_json("/v1/subjects", {"name": "Scream"}), "post", "/v1/subjects", 201, "create Scream")
    low = d.post_raw("/v1/faces", scream, "image/jpeg", query={"det_threshold": 0.1}).json()
    best = max(low["faces"], key=lambda f: f["det_score"]) if low.get("faces") else None
    c.check("fallback", best is not None and 0.1 <= best["det_score"] < 0.5 and
            d.post_raw("/v1/faces", scream, "image/jpeg").json()["count"] == 0,
            "scream.jpg: no face at 0.5, its best between 0.1 and 0.5", repr(low))
    r = d.post_multipart("/v1/subjects/Scream/faces", [("p", ("scream.jpg", scream, "image/jpeg"))])
    ok(r, "post", path, 201, "enrol scream.jpg (one face under det_threshold)")
    f = r.json()["faces"][0] if r.status == 201 else {}
    fb, bb = f.get("box") or {}, (best or {}).get("box") or {}
    same_box = bool(fb) and all(abs(fb[g] - bb[w]) <= 0.01 for g, w in
                                (("x_min", "x1"), ("y_min", "y1"), ("x_max", "x2"), ("y_max", "y2")))
    c.check("fallback", f.get("fallback") is True and best is not None and same_box
            and abs(f.get("det_score", -1) - best["det_score"]) <= 1e-4,
            "enrolled with fallback: true, the det_score and box of its best face at 0.1", f"{f} vs {best}")
    r = d.post_multipart("/v1/subjects/Scream/faces", [("p", ("one.jpg", DEMO_ONE.read_bytes(), "image/jpeg"))])
    ok(r, "post", path, 201, "enrol a clear face")
    c.check("fallback", r.status == 201 and "fallback" not in r.json()["faces"][0],
            "a face found at det_threshold says no fallback", repr(r))
    r = d.get("/v1/subjects/Scream/faces")
    ok(r, "get", path, 200, "Scream's faces")
    c.check("fallback", r.status == 200 and len(r.json()["faces"]) == 2, "both faces are in the gallery", repr(r))
    before = d.get("/v1/gallery").json()["faces"]
    r = d.post_multipart("/v1/subjects/Scream/faces", [("p", ("scream.jpg", scream, "image/jpeg"))],
                         query={"min_det_threshold": 0.5})
    err(r, 422, "NO_FACE", "scream.jpg with min_det_threshold=0.5")
    c.check("fallback", r.json().get("error", {}).get("field") == "p", "NO_FACE names the photo", repr(r))
    r = d.post_multipart("/v1/subjects/Scream/faces", [("d", ("dog.jpg", DOG.read_bytes(), "image/jpeg"))])
    err(r, 422, "NO_FACE", "dog.jpg: no face even at min_det_threshold 0.1")
    b64 = base64.b64encode(scream).decode()
    err(d.post_json("/v1/subjects/Scream/faces", {"images_b64": [b64], "min_det_threshold": 0.5}), 422, "NO_FACE",
        "scream.jpg as base64 JSON with min_det_threshold 0.5")
    for bad in ("2", "-0.1", "x"):
        r = d.post_raw("/v1/subjects/Scream/faces", scream, "image/jpeg", query={"min_det_threshold": bad})
        v = d.post_multipart("/v1/verify", [("image1", ("a.jpg", scream, "image/jpeg")),
                                            ("image2", ("b.jpg", scream, "image/jpeg"))],
                             query={"min_det_threshold": bad})
        e, ve = r.json().get("error", {}), v.json().get("error", {})
        c.check("fallback", r.status == 400 and e.get("code") == "INVALID_PARAM"
                and e.get("field") == "min_det_threshold" and e.get("message") == ve.get("message"),
                f"min_det_threshold={bad}: 400 INVALID_PARAM, /v1/verify's message", f"{r!r} / {v!r}")
    after = d.get("/v1/gallery").json()["faces"]
    c.check("fallback", before == after, f"refusals enrol nothing ({before} faces before, {after} after)")
    r = d.post_multipart("/v1/vision/face/register", [("userid", "ScreamDS"),
                                                      ("image", ("scream.jpg", scream, "image/jpeg"))])
    c.check("fallback", r.status == 200 and r.json().get("success") is True,
            "DeepStack register enrols scream.jpg through the fallback", repr(r))
    r = d.post_multipart("/v1/vision/face/register", [("userid", "ScreamDS"),
                                                      ("image", ("dog.jpg", DOG.read_bytes(), "image/jpeg"))])
    c.check("fallback", r.status >= 400 and r.json().get("success") is False, "DeepStack register: dog.jpg refused",
            repr(r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (ROOT / "models" / "faces").is_dir() or not JOHNS.is_dir():
        print("skipped: face models or chips missing")
        return 77
    api = daemon.OpenApi()
    c = daemon.Checks()
    chips = sorted(JOHNS.glob("*/*.jpg"))
    salley = [p for p in chips if p.parent.name == "John_Salley"]
    simm = [p for p in chips if p.parent.name == "John_Simm"]

    def ok(r, method, path, status, what):
        good = c.check("routes", r.status == status, f"{what}: {status}", repr(r))
        if good and r.body:
            errs = api.validate(path, method, r.status, r.json())
            c.check("openapi", not errs, f"{what} matches the spec", "; ".join(errs[:3]))
        return good

    def err(r, status, code, what):
        body = r.json() if r.body else {}
        c.check("bad-input", r.status == status and body.get("error", {}).get("code") == code,
                f"{what}: {status} {code}", repr(r))

    with tempfile.TemporaryDirectory(prefix="visiond-gallery-api-") as data, \
            daemon.Daemon(args.visiond, "--data-dir", data) as d:
        H = {"Content-Type": "application/json"}
        fp = d.get("/v1/gallery").json()["model_fingerprint"]
        r = d.post_json("/v1/subjects", {"name": SECRET_NAME})
        ok(r, "post", "/v1/subjects", 201, "create")
        r = d.post_json("/v1/subjects", {"name": SECRET_NAME})
        err(r, 409, "SUBJECT_EXISTS", "duplicate subject")
        for bad, what in (("", "empty name"), ("x" * 129, "129-byte name"), ("a/b", "name with /"),
                          ("a\nb", "name with a control character")):
            err(d.post_json("/v1/subjects", {"name": bad}), 400, "INVALID_PARAM", what)
        ok(d.post_json("/v1/subjects", {"name": "x" * 128}), "post", "/v1/subjects", 201, "128-byte name")
        err(d.post_json("/v1/subjects", b'{"name":'), 400, "BAD_JSON", "truncated JSON")

        # enrol: multipart with two files (any field names), then a raw body
        base = f"/v1/subjects/{q(SECRET_NAME)}"
        r = d.post_multipart(base + "/faces", [("aligned", "true"),
                                               ("a", ("1.jpg", salley[0].read_bytes(), "image/jpeg")),
                                               ("b", ("2.jpg", salley[1].read_bytes(), "image/jpeg"))])
        ok(r, "post", "/v1/subjects/{name}/faces", 201, "enrol two photos")
        ids = [f["face_id"] for f in r.json()["faces"]] if r.status == 201 else []
        r = d.post_raw(base + "/faces", salley[2].read_bytes(), "image/jpeg", query={"aligned": "true"})
        ok(r, "post", "/v1/subjects/{name}/faces", 201, "enrol a raw body")
        # embeddings (JSON) of another subject, by the recognizer itself through /v1/verify's machinery
        emb = json.loads(daemon.run_visiond(args.visiond, "faces", "--embedding", "--no-landmarks",
                                            str(DEMO / "sample1.jpg")).stdout.splitlines()[0])["faces"][0]["embedding"]
        ok(d.post_json("/v1/subjects", {"name": "Demo"}), "post", "/v1/subjects", 201, "create Demo")
        r = d.post_json("/v1/subjects/Demo/faces", {"embeddings": [emb], "model_fingerprint": fp})
        ok(r, "post", "/v1/subjects/{name}/faces", 201, "enrol an embedding")
        # photos as base64 in JSON, with the photo options as members
        b64 = base64.b64encode(salley[6].read_bytes()).decode()
        r = d.post_json(base + "/faces", {"images_b64": [b64, "data:image/jpeg;base64," + b64], "aligned": True})
        ok(r, "post", "/v1/subjects/{name}/faces", 201, "enrol two base64 photos (JSON)")
        extra = [f["face_id"] for f in r.json()["faces"]] if r.status == 201 else []
        for fid in extra:
            d.request("DELETE", f"/v1/faces/{fid}")
        err(d.post_json(base + "/faces", {"images_b64": ["not base64!"], "aligned": True}), 400, "INVALID_PARAM",
            "a photo that is not base64")
        r = d.post_json("/v1/identify", {"image_b64": b64, "aligned": True, "top_k": 2})
        ok(r, "post", "/v1/identify", 200, "identify a base64 photo (JSON)")
        c.check("identify", r.status == 200 and (r.json()["faces"][0]["match"] or {}).get("subject") == SECRET_NAME,
                "the base64 photo is the enrolled person", repr(r))
        r = d.get(base)
        c.check("routes", r.status == 200 and r.json()["face_count"] == 3, "face count 3", repr(r))

        before = d.get("/v1/gallery").json()["faces"]
        err(d.post_json("/v1/subjects/Demo/faces", {"embeddings": [emb[:127]], "model_fingerprint": fp}),
            400, "INVALID_PARAM", "127 numbers")
        err(d.post_json("/v1/subjects/Demo/faces", '{"embeddings":[[' + ",".join(["NaN"] * 128) + ']],'
                        '"model_fingerprint":"' + fp + '"}'), 400, "BAD_JSON", "NaN in an embedding")
        err(d.post_json("/v1/subjects/Demo/faces", {"embeddings": [emb], "model_fingerprint": "0" * 64}),
            422, "MODEL_MISMATCH", "another model's embedding")
        err(d.post_json("/v1/subjects/Nobody/faces", {"embeddings": [emb], "model_fingerprint": fp}),
            404, "SUBJECT_NOT_FOUND", "enrol into an unknown subject")
        # a photo without a face (the dog), second of two: neither is enrolled
        r = d.post_multipart(base + "/faces", [("p1", ("ok.jpg", DEMO_ONE.read_bytes(), "image/jpeg")),
                                               ("p2", ("none.jpg", DOG.read_bytes(), "image/jpeg"))])
        err(r, 422, "NO_FACE", "a photo without a face")
        c.check("bad-input", r.json().get("error", {}).get("field") == "p2", "NO_FACE names the photo", repr(r))
        r = d.post_multipart(base + "/faces", [("group", ("group.jpg", (DEMO / "sample1.jpg").read_bytes(),
                                                          "image/jpeg"))])
        err(r, 422, "MULTIPLE_FACES", "a group photo")
        c.check("bad-input", r.json().get("error", {}).get("field") == "group", "MULTIPLE_FACES names the photo",
                repr(r))
        after = d.get("/v1/gallery").json()["faces"]
        c.check("bad-input", before == after, f"nothing half-written ({before} faces before, {after} after)")

        # list, page, faces
        r = d.get("/v1/subjects?page_size=2")
        ok(r, "get", "/v1/subjects", 200, "first page")
        page = r.json()
        r2 = d.get("/v1/subjects?page_size=2&cursor=" + page["next_cursor"]) if page["next_cursor"] else None
        c.check("routes", r2 is not None and r2.status == 200 and
                {s["name"] for s in page["subjects"]} | {s["name"] for s in r2.json()["subjects"]}
                == {SECRET_NAME, "x" * 128, "Demo"}, "two pages hold the three subjects", repr(r2))
        err(d.get("/v1/subjects?page_size=0"), 400, "INVALID_PARAM", "page_size 0")
        err(d.get("/v1/subjects?cursor=zz"), 400, "INVALID_PARAM", "a forged cursor")
        ok(d.get(base + "/faces"), "get", "/v1/subjects/{name}/faces", 200, "faces of a subject")
        err(d.get("/v1/subjects/Nobody"), 404, "SUBJECT_NOT_FOUND", "unknown subject")
        err(d.get("/v1/subjects/Nobody/faces"), 404, "SUBJECT_NOT_FOUND", "faces of an unknown subject")

        # identify: a known chip, an unknown person, an embedding
        r = d.post_multipart("/v1/identify", [("aligned", "true"),
                                              ("image", ("q.jpg", salley[5].read_bytes(), "image/jpeg"))])
        ok(r, "post", "/v1/identify", 200, "identify a known face")
        m = r.json()["faces"][0]["match"] if r.status == 200 else None
        c.check("identify", m and m["subject"] == SECRET_NAME and m["face_id"] in ids + [ids[-1] + 1 if ids else 0],
                "the match is the enrolled person", repr(r))
        r = d.post_multipart("/v1/identify", [("aligned", "true"),
                                              ("image", ("u.jpg", simm[0].read_bytes(), "image/jpeg"))])
        ok(r, "post", "/v1/identify", 200, "identify a stranger")
        f0 = r.json()["faces"][0]
        c.check("identify", f0["match"] is None and len(f0["candidates"]) >= 1, "a stranger is match: null", repr(r))
        r = d.post_json("/v1/identify", {"embedding": emb, "top_k": 1})
        ok(r, "post", "/v1/identify", 200, "identify an embedding")
        c.check("identify", r.json()["faces"][0]["match"]["subject"] == "Demo", "the embedding is Demo", repr(r))
        r = d.post_json("/identify", {"embedding": emb})
        c.check("identify", r.status == 200, "the un-versioned alias /identify", repr(r))
        err(d.post_json("/v1/identify", {"embedding": emb, "top_k": 0}), 400, "INVALID_PARAM", "top_k 0")

        # rename, delete a face, delete a subject
        r = d.request("PATCH", base, body=json.dumps({"name": "Renamed"}).encode(), headers=H)
        ok(r, "patch", "/v1/subjects/{name}", 200, "rename")
        r = d.request("PATCH", "/v1/subjects/Renamed", body=json.dumps({"name": "Demo"}).encode(), headers=H)
        err(r, 409, "SUBJECT_EXISTS", "rename onto a taken name")
        if ids:
            ok(d.request("DELETE", f"/v1/faces/{ids[0]}"), "delete", "/v1/faces/{face_id}", 200, "delete a face")
            err(d.request("DELETE", f"/v1/faces/{ids[0]}"), 404, "FACE_NOT_FOUND", "delete it again")
        err(d.request("DELETE", "/v1/faces/abc"), 404, "FACE_NOT_FOUND", "a face id that is not a number")
        r = d.request("DELETE", "/v1/subjects/Renamed")
        ok(r, "delete", "/v1/subjects/{name}", 200, "delete a subject")
        c.check("routes", r.json()["deleted"]["faces"] == 2, "its two remaining faces went too", repr(r))
        err(d.request("DELETE", "/v1/subjects/Renamed"), 404, "SUBJECT_NOT_FOUND", "delete it again")
        test_fallback(d, c, ok, err)
        ok(d.get("/v1/gallery"), "get", "/v1/gallery", 200, "gallery state")
        code, log = d.stop()
        c.check("logs", SECRET_NAME not in log and "Renamed" not in log, "no subject name in the info-level log")
        c.check("daemon", code == 0 and not daemon.sanitizer_report(log), "clean exit", daemon.sanitizer_report(log))

    # access: inference keys read, admin keys write
    with tempfile.TemporaryDirectory(prefix="visiond-gallery-keys-") as data:
        keys = pathlib.Path(data) / "keys"
        keys.write_text(f"{INFER_KEY}\nsha256:{hashlib.sha256(ADMIN_KEY.encode()).hexdigest()} scope=admin\n")
        with daemon.Daemon(args.visiond, "--data-dir", data, "--keys", str(keys)) as d:
            inf, adm = {"X-API-Key": INFER_KEY}, {"X-API-Key": ADMIN_KEY}
            J = {"Content-Type": "application/json"}
            c.check("access", d.get("/v1/subjects").status == 401, "listing names needs a key")
            r = d.post_json("/v1/subjects", {"name": "K"}, headers=inf)
            c.check("access", r.status == 403, "inference key cannot create", repr(r))
            r = d.post_json("/v1/subjects", {"name": "K"}, headers=adm)
            c.check("access", r.status == 201, "admin key creates", repr(r))
            c.check("access", d.get("/v1/subjects", headers=inf).status == 200, "inference key lists")
            for method, path in (("PATCH", "/v1/subjects/K"), ("DELETE", "/v1/subjects/K"), ("DELETE", "/v1/faces/1"),
                                 ("POST", "/v1/subjects/K/faces")):
                r = d.request(method, path, body=b"{}", headers={**inf, **J})
                c.check("access", r.status == 403, f"inference key: {method} {path} 403", repr(r))
            r = d.post_multipart("/v1/vision/face/register", [("userid", "K")], headers=inf)
            c.check("access", r.status == 403 and r.json().get("success") is False,
                    "inference key: DeepStack register 403 in DeepStack's shape", repr(r))
            r = d.post_multipart("/v1/vision/face/delete", [("userid", "K")], headers=inf)
            c.check("access", r.status == 403, "inference key: DeepStack delete 403", repr(r))
            r = d.post_multipart("/v1/vision/face/list", [], headers=inf)
            c.check("access", r.status == 200 and r.json()["faces"] == ["K"], "inference key: DeepStack list",
                    repr(r))
            r = d.post_multipart("/v1/vision/face/delete", [("userid", "K")], headers=adm)
            c.check("access", r.status == 200, "admin key: DeepStack delete", repr(r))
    return c.summary("test_gallery_api")


if __name__ == "__main__":
    sys.exit(main())
