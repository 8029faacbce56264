#!/usr/bin/python3
"""proto/openapi.yaml, proto/openapi.json and proto/'s encoders agree.

  sync      : proto/openapi.json is what scripts/gen-openapi-json makes of proto/openapi.yaml, and the
              copy embedded in the binary (proto_openapi_json()) is that file, byte for byte
  document  : a well-formed OpenAPI 3.1 document: every endpoint of the daemon with its method, every
              $ref resolves, every schema is a valid JSON Schema (2020-12), response keys are statuses
  codes     : the ErrorCode enum is exactly proto/'s error table, and /v1/detect, /v1/faces and
              /v1/verify document their statuses
  samples   : every sample the encoders produce (visiond_proto_samples) validates against its schema
  requests  : the DetectJsonRequest, FacesJsonRequest and VerifyJsonRequest schemas and proto/'s JSON
              parsers accept and reject the same bodies

Run by ctest as /usr/bin/python3 tests/ref/test_openapi_sync.py --visiond <build>/visiond; the helper
visiond_proto_samples is found in <build>/tests/ (or given with --samples). Needs Debian's python3-yaml
and python3-jsonschema, hence /usr/bin/python3; exits 77 (skipped) without them.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import pathlib
import subprocess
import sys

try:
    import jsonschema
    import yaml  # noqa: F401  (used by scripts/gen-openapi-json)
except ImportError as e:  # ctest treats 77 as "skipped"
    print(f"SKIP: {e} (install python3-yaml and python3-jsonschema for /usr/bin/python3)")
    sys.exit(77)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENDPOINTS = {
    "/v1/detect": "post",
    "/v1/vision/detection": "post",
    "/v1/faces": "post",
    "/v1/verify": "post",
    "/v1/vision/face": "post",
    "/v1/vision/face/match": "post",
    "/v1/models": "get",
    "/healthz": "get",
    "/readyz": "get",
    "/metrics": "get",
    "/openapi.json": "get",
    "/v1/subjects": "get",
    "/v1/subjects/{name}": "get",
    "/v1/subjects/{name}/faces": "get",
    "/v1/faces/{face_id}": "delete",
    "/v1/identify": "post",
    "/identify": "post",
    "/v1/gallery": "get",
    "/v1/vision/face/register": "post",
    "/v1/vision/face/recognize": "post",
    "/v1/vision/face/list": "post",
    "/v1/vision/face/delete": "post",
}
DETECT_FORMS = {"image/jpeg", "image/png", "multipart/form-data", "application/json"}
DETECT_STATUSES = {"200", "400", "401", "404", "413", "415", "500", "503", "504"}
# No face in /v1/faces is a 200 with an empty list; in /v1/verify it is 422 NO_FACE.
ROUTE_FORMS = {"/v1/faces": DETECT_FORMS, "/v1/verify": {"multipart/form-data", "application/json"}}
ROUTE_STATUSES = {"/v1/faces": {"200", "400", "401", "413", "415", "500", "503", "504"},
                  "/v1/verify": {"200", "400", "401", "413", "415", "422", "500", "503", "504"}}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

PNG = "iVBORw0KGgo="  # any bytes: the parser does not decode the image
# (body, expected by both the schema and the parser)
REQUESTS = [
    ({"image_b64": PNG}, True),
    ({"image_b64": "data:image/png;base64," + PNG}, True),
    ({"image_b64": PNG, "model": "yolo-fastest-1.1", "conf": 0.5, "iou": 0.3, "agnostic_nms": True,
      "max_det": 10, "classes": ["person", 2], "exif": False, "timeout_ms": 1000}, True),
    ({"image_b64": PNG, "min_confidence": 1, "agnostic": False, "classes": "person, car"}, True),
    ({"image_b64": PNG, "model": None, "conf": None, "classes": None, "timeout_ms": None}, True),
    ({"image_b64": PNG, "conf": 0, "iou": 1, "max_det": 1000, "timeout_ms": 600000}, True),
    ({}, False),
    ({"image_b64": ""}, False),
    ({"image_b64": 12}, False),
    ({"image_b64": PNG, "conf": 1.5}, False),
    ({"image_b64": PNG, "conf": -0.1}, False),
    ({"image_b64": PNG, "conf": "0.5"}, False),
    ({"image_b64": PNG, "iou": True}, False),
    ({"image_b64": PNG, "max_det": 0}, False),
    ({"image_b64": PNG, "max_det": 10.5}, False),
    ({"image_b64": PNG, "max_det": 1001}, False),
    ({"image_b64": PNG, "timeout_ms": 0}, False),
    ({"image_b64": PNG, "timeout_ms": 600001}, False),
    ({"image_b64": PNG, "agnostic_nms": "true"}, False),
    ({"image_b64": PNG, "exif": 1}, False),
    ({"image_b64": PNG, "classes": []}, False),
    ({"image_b64": PNG, "classes": [-1]}, False),
    ({"image_b64": PNG, "classes": ["person", 1.5]}, False),
    ({"image_b64": PNG, "classes": ""}, False),
    ({"image_b64": PNG, "classes": {"a": 1}}, False),
    ({"image_b64": PNG, "model": "../etc/passwd"}, False),
    ({"image_b64": PNG, "model": ""}, False),
    ({"image_b64": PNG, "confidence": 0.5}, False),
    ({"image_b64": PNG, "api_key": "k"}, False),
    ([PNG], False),
]

EMB = [round((i - 64) / 317.0, 6) for i in range(128)]
# /v1/faces bodies: (body, expected by both the schema and the parser)
FACES_REQUESTS = [
    ({"image_b64": PNG}, True),
    ({"image_b64": "data:image/png;base64," + PNG, "det_threshold": 0.3, "input_size": 608, "limit": 2,
      "landmarks": False, "embedding": True, "exif": False, "timeout_ms": 1000}, True),
    ({"image_b64": PNG, "det_threshold": 0, "input_size": 128, "limit": 0}, True),
    ({"image_b64": PNG, "det_threshold": 1, "input_size": 1024, "limit": 1000}, True),
    ({"image_b64": PNG, "det_threshold": None, "input_size": None, "limit": None, "landmarks": None,
      "embedding": None, "exif": None, "timeout_ms": None}, True),
    ({}, False),
    ({"image_b64": ""}, False),
    ({"image_b64": 1}, False),
    ({"image_b64": PNG, "det_threshold": 1.5}, False),
    ({"image_b64": PNG, "det_threshold": "0.5"}, False),
    ({"image_b64": PNG, "input_size": 300}, False),
    ({"image_b64": PNG, "input_size": 96}, False),
    ({"image_b64": PNG, "input_size": 1056}, False),
    ({"image_b64": PNG, "input_size": "416"}, False),
    ({"image_b64": PNG, "limit": -1}, False),
    ({"image_b64": PNG, "limit": 1001}, False),
    ({"image_b64": PNG, "landmarks": "true"}, False),
    ({"image_b64": PNG, "embedding": 1}, False),
    ({"image_b64": PNG, "timeout_ms": 0}, False),
    ({"image_b64": PNG, "threshold": 0.5}, False),
    ({"image_b64": PNG, "min_confidence": 0.5}, False),
    ({"image_b64": PNG, "match_threshold": 0.5}, False),
    ({"image1_b64": PNG}, False),
    ({"image_b64": PNG, "api_key": "k"}, False),
    ([PNG], False),
]
# /v1/verify bodies
VERIFY_REQUESTS = [
    ({"image1_b64": PNG, "image2_b64": PNG}, True),
    ({"embedding1": EMB, "embedding2": EMB}, True),
    ({"image1_b64": PNG, "embedding2": EMB, "face_select": "best", "match_threshold": 0.5,
      "aligned": True, "det_threshold": 0.7, "input_size": 320, "exif": False, "timeout_ms": 5}, True),
    ({"embedding1": EMB, "image2_b64": "data:image/png;base64," + PNG, "face_select": "largest",
      "match_threshold": 0, "image1_b64": None, "embedding2": None}, True),
    ({"image1_b64": PNG, "image2_b64": PNG, "match_threshold": 4, "aligned": None,
      "face_select": None}, True),
    ({"embedding1": [1000] * 128, "embedding2": [-1000.0] * 128}, True),
    ({}, False),
    ({"image1_b64": PNG}, False),
    ({"image2_b64": PNG}, False),
    ({"embedding1": EMB}, False),
    ({"image1_b64": PNG, "image2_b64": None}, False),
    ({"image1_b64": PNG, "embedding1": EMB, "image2_b64": PNG}, False),
    ({"image1_b64": PNG, "image2_b64": ""}, False),
    ({"image1_b64": PNG, "embedding2": EMB[:127]}, False),
    ({"image1_b64": PNG, "embedding2": EMB + [0.0]}, False),
    ({"image1_b64": PNG, "embedding2": EMB[:127] + ["0.5"]}, False),
    ({"image1_b64": PNG, "embedding2": EMB[:127] + [None]}, False),
    ({"image1_b64": PNG, "embedding2": EMB[:127] + [1001]}, False),
    ({"image1_b64": PNG, "embedding2": ",".join(map(str, EMB))}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "face_select": "biggest"}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "face_select": "Best"}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "match_threshold": 4.5}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "match_threshold": -0.1}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "aligned": "true"}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "input_size": 100}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "threshold": 0.6}, False),
    ({"image1_b64": PNG, "image2_b64": PNG, "limit": 1}, False),
    ({"image": PNG, "image2_b64": PNG}, False),
    ({"image1": PNG, "image2": PNG}, False),
]
REQUEST_SETS = [("detect", "DetectJsonRequest", None), ("faces", "FacesJsonRequest", FACES_REQUESTS),
                ("verify", "VerifyJsonRequest", VERIFY_REQUESTS)]


def load_generator():
    path = ROOT / "scripts" / "gen-openapi-json"
    loader = importlib.machinery.SourceFileLoader("gen_openapi_json", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, group, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed.append(f"{group}: {what}")
            print(f"FAIL {group}: {what}")


def resolve(doc, ref):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def walk(node, path=""):
    """Yields (path, dict) for every object in the document."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}/{i}")


def schemas_in(doc):
    """Every JSON Schema of the document, with where it is."""
    for name, schema in doc["components"]["schemas"].items():
        yield f"components/schemas/{name}", schema
    for path, node in walk(doc["paths"]):
        if "schema" in node and isinstance(node["schema"], dict):
            yield f"paths{path}/schema", node["schema"]
    for name, param in doc["components"]["parameters"].items():
        yield f"components/parameters/{name}/schema", param["schema"]
    for name, header in doc["components"]["headers"].items():
        yield f"components/headers/{name}/schema", header["schema"]


def validator(doc, schema_name):
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


def check_document(c, doc):
    c.check("document", str(doc.get("openapi", "")).startswith("3.1."), "openapi is 3.1.x")
    info = doc.get("info", {})
    c.check("document", isinstance(info.get("title"), str) and isinstance(info.get("version"), str),
            "info has title and version")
    operation_ids = []
    for path, method in ENDPOINTS.items():
        op = doc["paths"].get(path, {}).get(method)
        c.check("document", op is not None, f"{method.upper()} {path} is described")
        if op is None:
            continue
        operation_ids.append(op.get("operationId"))
        responses = op.get("responses", {})
        c.check("document", "200" in responses, f"{method.upper()} {path} has a 200 response")
        for status in responses:
            c.check("document", status == "default" or (len(status) == 3 and status.isdigit()),
                    f"{path} response key {status!r} is a status")
    c.check("document", len(set(operation_ids)) == len(operation_ids) and None not in operation_ids,
            "operationIds are unique")
    for path, item in doc["paths"].items():
        for method in item:
            c.check("document", method in METHODS | {"summary", "description", "parameters"},
                    f"{path}: {method} is a method")
    detect = doc["paths"]["/v1/detect"]["post"]
    forms = set(detect["requestBody"]["content"])
    c.check("document", forms == DETECT_FORMS, f"/v1/detect takes {sorted(DETECT_FORMS)} (has {sorted(forms)})")
    missing = DETECT_STATUSES - set(detect["responses"])
    c.check("document", not missing, f"/v1/detect documents statuses {sorted(missing)}")
    for path, want in ROUTE_FORMS.items():
        op = doc["paths"].get(path, {}).get("post", {})
        forms = set(op.get("requestBody", {}).get("content", {}))
        c.check("document", forms == want, f"{path} takes {sorted(want)} (has {sorted(forms)})")
        missing = ROUTE_STATUSES[path] - set(op.get("responses", {}))
        c.check("document", not missing, f"{path} documents statuses {sorted(missing)}")
    for where, node in walk(doc):
        if "$ref" in node:
            try:
                resolve(doc, node["$ref"])
                ok = True
            except (KeyError, AssertionError):
                ok = False
            c.check("document", ok, f"{where}: $ref {node['$ref']} resolves")
    for where, schema in schemas_in(doc):
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            ok, why = True, ""
        except jsonschema.SchemaError as e:
            ok, why = False, e.message
        c.check("document", ok, f"{where} is a valid JSON Schema {why}")
    schemes = doc["components"].get("securitySchemes", {})
    for requirement in doc.get("security", []):
        for name in requirement:
            c.check("document", name in schemes, f"security scheme {name} is defined")


def run(tool, *args, stdin=None):
    return subprocess.run([str(tool), *args], input=stdin, capture_output=True, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--samples", help="visiond_proto_samples (default: <visiond's dir>/tests/)")
    args = ap.parse_args()
    tool = pathlib.Path(args.samples) if args.samples else \
        pathlib.Path(args.visiond).resolve().parent / "tests" / "visiond_proto_samples"
    if not tool.exists():
        print(f"FAIL: {tool} not found (build the visiond_proto_samples target)")
        return 1
    c = Checks()

    gen = load_generator()
    yaml_text = (ROOT / "proto" / "openapi.yaml").read_text(encoding="utf-8")
    json_text = (ROOT / "proto" / "openapi.json").read_text(encoding="utf-8")
    c.check("sync", json_text == gen.convert(yaml_text),
            "proto/openapi.json is out of date: run scripts/gen-openapi-json")
    embedded = run(tool, "--openapi").stdout
    c.check("sync", embedded == json_text.encode("utf-8"),
            "the embedded OpenAPI differs from proto/openapi.json: re-run cmake")
    doc = json.loads(json_text)

    check_document(c, doc)

    table = dict(line.split("\t") for line in run(tool, "--codes").stdout.decode().splitlines())
    enum = doc["components"]["schemas"]["ErrorCode"]["enum"]
    c.check("codes", list(table) == enum, f"ErrorCode enum {enum} == the table {list(table)}")
    description = doc["components"]["schemas"]["ErrorCode"]["description"]
    for code in table:
        c.check("codes", code in description, f"ErrorCode's description gives {code}'s status")

    out = run(tool)
    c.check("samples", out.returncode == 0, f"visiond_proto_samples exits 0 ({out.stderr.decode()})")
    n_samples = 0
    for line in out.stdout.decode("utf-8").splitlines():
        schema_name, status, body = line.split("\t", 2)
        try:
            value = json.loads(body)
        except ValueError as e:
            c.check("samples", False, f"{schema_name} sample is not JSON ({e}): {body}")
            continue
        errors = sorted(validator(doc, schema_name).iter_errors(value), key=lambda e: e.path)
        c.check("samples", not errors,
                f"{schema_name} sample {body[:120]}: " + "; ".join(e.message for e in errors[:3]))
        if schema_name == "Error":
            c.check("samples", table.get(value["error"]["code"]) == status,
                    f"{value['error']['code']} replies with status {status}")
        if schema_name == "DeepStackError":
            c.check("samples", str(value["code"]) == status, f"DeepStack error code {value['code']}")
        if schema_name == "Error" and "no face found (" in value["error"]["message"]:  # the helper's
            c.check("samples", value["error"].get("field") in ("image", "image1", "image2"),
                    f"NO_FACE names the image: {body}")
        n_samples += 1
    c.check("samples", n_samples >= 20, f"{n_samples} samples")

    error_validator = validator(doc, "Error")
    for route, schema_name, bodies in REQUEST_SETS:
        request_validator = validator(doc, schema_name)
        for body, expected in bodies if bodies is not None else REQUESTS:
            text = json.dumps(body)
            short = text if len(text) < 160 else text[:150] + "..."
            schema_ok = request_validator.is_valid(body)
            parsed = run(tool, "--parse-json", "--route", route, stdin=text.encode())
            parser_ok = parsed.returncode == 0
            c.check("requests", parsed.returncode in (0, 1), f"{route} {short}: parser exit {parsed.returncode}")
            c.check("requests", schema_ok == expected, f"{route} {short}: schema says {schema_ok}")
            c.check("requests", parser_ok == expected, f"{route} {short}: parser says {parser_ok} "
                    f"{parsed.stdout.decode().strip()}")
            if not parser_ok and parsed.returncode == 1:
                err = json.loads(parsed.stdout)
                c.check("requests", error_validator.is_valid(err), f"{route} {short}: error {err} fits Error")
                c.check("requests", err["error"].get("field", "").startswith("$"),
                        f"{route} {short}: error names a JSON path ({err})")
    # The DeepStack dialect ignores members it does not know, like DeepStack.
    for route, body in [("detect", {"image_b64": PNG, "min_confidence": 0.4, "typ": 1}),
                        ("faces", {"image_b64": PNG, "min_confidence": 0.4, "typ": 1}),
                        ("verify", {"image1_b64": PNG, "image2_b64": PNG, "min_confidence": 0.4,
                                    "typ": 1})]:
        parsed = run(tool, "--parse-json", "--deepstack", "--route", route, stdin=json.dumps(body).encode())
        c.check("requests", parsed.returncode == 0,
                f"DeepStack dialect, {route}: {parsed.stdout.decode().strip()}")

    print(f"{c.passed} passed, {len(c.failed)} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
