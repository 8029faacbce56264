#!/usr/bin/python3
"""The route table (server/srv_routes.c, issue 13): a row is all a route needs, and the table and the
contract agree.

  toy-route   visiond_toyroute is the daemon built with three more rows (tests/tools/srv_toy_route.inc:
              POST /v1/toy/{name}, POST /v1/vision/toy/{name}, DELETE /v1/toy/{name} with the admin
              scope) and no other code. Against it, from outside: auth (401 without a key, 200 with an
              inference key; the admin row: 403 FORBIDDEN for an inference key, 200 for an admin key
              from the keys file's `scope=admin`), CORS (the allowed origin echoed, preflight), limits
              (413 over --max-body), the {name} capture reaching the job, the error shape of the row's
              dialect (native, DeepStack under /v1/vision/, also for an unmatched path there), 405 with
              Allow, and /metrics counting the rows by route and the errors by code.
  openapi     `visiond routes` (the table as it is compiled) and proto/openapi.yaml: every row's
              methods and path documented, every documented path and method a row.

usage: test_route_table.py --visiond build/visiond [--toy build/tests/visiond_toyroute]
(--toy defaults to tests/visiond_toyroute beside --visiond, as CMake builds it)
Exit 0 if all pass, 1 on any failure.
"""
import argparse
import hashlib
import pathlib
import re
import sys
import tempfile

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

INFER_KEY = "route-infer-key-0123456789"
ADMIN_KEY = "route-admin-key-9876543210"
ORIGIN = "https://app.example"


def keys_file(tmp):
    p = tmp / "keys"
    p.write_text("# an inference key (no scope), an admin key (hashed)\n"
                 f"{INFER_KEY}\n"
                 f"sha256:{hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}  scope=admin\n")
    return p


def native_error(r, code):
    try:
        body = r.json()
    except ValueError:
        return False
    return r.status and body.get("error", {}).get("code") == code and "request_id" in body


def deepstack_error(r, status):
    try:
        body = r.json()
    except ValueError:
        return False
    return body.get("success") is False and body.get("code") == status and isinstance(body.get("error"), str)


def test_toy(c, d):
    g = "toy-route"
    infer = {"X-API-Key": INFER_KEY}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = d.post_json("/v1/toy/abc", "{}", query={"n": 3})
    c.check(g, r.status == 401 and native_error(r, "UNAUTHORIZED"), "no key: 401 UNAUTHORIZED", repr(r))
    r = d.post_json("/v1/toy/abc", "{}", query={"n": 3}, headers={**infer, "Origin": ORIGIN})
    c.check(g, r.status == 200 and r.json() == {"name": "abc", "n": 3}, "inference key: the job's answer, "
            "with the {name} capture", repr(r))
    c.check(g, r.header("Access-Control-Allow-Origin") == ORIGIN, "CORS: the allowed origin echoed", repr(r))
    c.check(g, bool(r.header("X-Request-Id")), "X-Request-Id header", repr(r))
    r = d.request("OPTIONS", "/v1/toy/abc", headers={"Origin": ORIGIN,
                                                      "Access-Control-Request-Method": "DELETE"})
    c.check(g, r.status == 204 and "DELETE" in (r.header("Access-Control-Allow-Methods") or ""),
            "CORS preflight allows DELETE", repr(r))
    r = d.post_json("/v1/toy/abc", "{}", query={"n": 99}, headers=infer)
    c.check(g, r.status == 400 and native_error(r, "INVALID_PARAM") and r.json()["error"].get("field") == "n",
            "bad parameter: 400 INVALID_PARAM, field n", repr(r))
    r = d.post_json("/v1/toy/ABC", "{}", headers=infer)
    c.check(g, r.status == 400 and native_error(r, "INVALID_PARAM"), "bad {name}: 400", repr(r))
    r = d.post_json("/v1/toy/abc", b"{" + b" " * 5000 + b"}", headers=infer)
    c.check(g, r.status == 413 and native_error(r, "PAYLOAD_TOO_LARGE"), "over --max-body: 413", repr(r))
    r = d.post_raw("/v1/vision/toy/abc", b"x", "text/plain", headers=infer)
    c.check(g, r.status == 415 and deepstack_error(r, 415), "DeepStack row: its error shape", repr(r))
    r = d.post_json("/v1/vision/toy/abc", "{}", query={"n": 2})
    c.check(g, r.status == 401 and deepstack_error(r, 401), "DeepStack row: 401 in its shape", repr(r))
    r = d.get("/v1/vision/no-such-thing", headers=infer)
    c.check(g, r.status == 404 and deepstack_error(r, 404), "unmatched path under /v1/vision/: DeepStack 404",
            repr(r))
    r = d.get("/v1/no-such-thing", headers=infer)
    c.check(g, r.status == 404 and native_error(r, "NOT_FOUND"), "unmatched path elsewhere: native 404", repr(r))
    r = d.request("DELETE", "/v1/toy/abc", headers=infer)
    c.check(g, r.status == 403 and native_error(r, "FORBIDDEN"), "admin row, inference key: 403 FORBIDDEN",
            repr(r))
    r = d.request("DELETE", "/v1/toy/abc", headers={"X-API-Key": "route-wrong-key-000000000"})
    c.check(g, r.status == 401, "admin row, unknown key: 401", repr(r))
    r = d.request("DELETE", "/v1/toy/abc", headers=admin)
    c.check(g, r.status == 200 and r.json() == {"deleted": "abc"}, "admin row, admin key: 200", repr(r))
    r = d.post_json("/v1/toy/xyz", "{}", headers=admin)
    c.check(g, r.status == 200 and r.json() == {"name": "xyz", "n": 1}, "admin key reaches inference rows",
            repr(r))
    body, ctype = daemon.multipart([("n", 4)])
    r = d.request("PATCH", "/v1/toy/abc", body=body, headers={**infer, "Content-Type": ctype})
    c.check(g, r.status == 200 and r.json() == {"name": "abc", "n": 4}, "PATCH with a multipart field", repr(r))
    r = d.request("PUT", "/v1/toy/abc", headers=infer)
    allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
    c.check(g, r.status == 405 and native_error(r, "METHOD_NOT_ALLOWED") and {"POST", "PATCH", "DELETE"} <= allow,
            "PUT: 405 with Allow naming POST, PATCH and DELETE", repr(r))
    page = d.get("/metrics", headers=infer).body.decode()
    for series in ('visiond_requests_total{route="toy",status="200"} 3',
                   'visiond_requests_total{route="toy_delete",status="403"} 1',
                   'visiond_requests_total{route="toy_delete",status="200"} 1',
                   'visiond_errors_total{code="FORBIDDEN"} 1',
                   'visiond_errors_total{code="UNAUTHORIZED"} 3',
                   'visiond_errors_total{code="PAYLOAD_TOO_LARGE"} 1',
                   'visiond_errors_total{code="NOT_FOUND"} 2'):
        c.check(g, series in page, f"metrics: {series}", "\n".join(
            line for line in page.splitlines() if "errors_total" in line or "route=\"toy" in line))
    m = re.search(r"visiond_inference_seconds_count (\d+)", page)
    c.check(g, m and int(m.group(1)) >= 3, "the toy jobs ran on the workers (inference histogram)", page[:0])


def test_openapi(c, visiond):
    g = "openapi"
    p = daemon.run_visiond(visiond, "routes")
    c.check(g, p.returncode == 0, "`visiond routes` exits 0", p.stderr)
    rows = set()
    for line in p.stdout.splitlines():
        methods, path = line.split()[:2]
        if methods == "-":
            continue  # a dialect prefix, not a route
        rows |= {(m.lower(), path) for m in methods.split(",") if m != "HEAD"}  # HEAD: implied by GET
    doc = yaml.safe_load((daemon.ROOT / "proto" / "openapi.yaml").read_text())
    documented = {(m, path) for path, item in doc["paths"].items() for m in item
                  if m in ("get", "post", "put", "patch", "delete")}
    c.check(g, len(rows) >= 11, "the table has the daemon's rows", sorted(rows))
    c.check(g, not rows - documented, "every row is documented in proto/openapi.yaml", sorted(rows - documented))
    c.check(g, not documented - rows, "every documented path and method is a row", sorted(documented - rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--toy")
    args = ap.parse_args()
    toy = args.toy or str(pathlib.Path(args.visiond).resolve().parent / "tests" / "visiond_toyroute")
    c = daemon.Checks()
    test_openapi(c, args.visiond)
    with tempfile.TemporaryDirectory(prefix="visiond-routes-") as tmp:
        flags = ("--keys", str(keys_file(pathlib.Path(tmp))), "--cors", ORIGIN, "--max-body", "4k")
        with daemon.Daemon(toy, *flags) as d:
            d.wait_ready()
            test_toy(c, d)
            code, err = d.stop()
        c.check("stop", code == 0, "exits 0 on SIGTERM", f"exit {code}\n{err[-1000:]}")
        c.check("stop", not daemon.sanitizer_report(err), "no sanitizer report", daemon.sanitizer_report(err))
    return c.summary("test_route_table")


if __name__ == "__main__":
    sys.exit(main())
