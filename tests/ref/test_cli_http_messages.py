#!/usr/bin/python3
"""The CLI and the HTTP API give the same message for the same bad parameter (issue 13): `visiond detect`,
`faces` and `verify` parse their options through the routes' parameter sinks (server/srv_params.c), so
`--max-det 1001` and `max_det=1001` are refused by the same rule with the same words, and the bounds are
the same (max_det up to 1000 on both).

For each case: the daemon's INVALID_PARAM message for the query parameter (its "<name>: " prefix
dropped) must equal the CLI's "visiond: --<option>: " line (that prefix dropped), and both must be
refusals (HTTP 400, CLI exit 2).

usage: test_cli_http_messages.py --visiond build/visiond   (from the project root)
Exit 0 if all pass, 1 on any failure.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

MODEL = "yolo-fastest-1.1"
# (HTTP route, query parameter, value, CLI verb, CLI option (None: a flag's value), CLI arguments)
CASES = [
    ("/v1/detect", "conf", "2", "detect", "conf", []),
    ("/v1/detect", "conf", "abc", "detect", "conf", []),
    ("/v1/detect", "iou", "1.5", "detect", "iou", []),
    ("/v1/detect", "max_det", "1001", "detect", "max-det", []),
    ("/v1/detect", "max_det", "0", "detect", "max-det", []),
    ("/v1/detect", "classes", "person,unicorn", "detect", "classes", []),
    ("/v1/detect", "classes", "person,,car", "detect", "classes", []),
    ("/v1/faces", "det_threshold", "2", "faces", "det-threshold", []),
    ("/v1/faces", "input_size", "100", "faces", "input-size", []),
    ("/v1/faces", "limit", "-1", "faces", "limit", []),
    ("/v1/verify", "match_threshold", "-1", "verify", "match-threshold", ["IMG"]),
    ("/v1/verify", "face_select", "worst", "verify", "face-select", ["IMG"]),
]


def http_message(d, route, param, value, image):
    query = {param: value}
    if route == "/v1/detect":
        query["model"] = MODEL
    if route == "/v1/verify":
        r = d.post_multipart(route, [("image1", ("a.jpg", image, "image/jpeg")),
                                     ("image2", ("b.jpg", image, "image/jpeg"))], query=query)
    else:
        r = d.post_raw(route, image, "image/jpeg", query=query)
    if r.status != 400:
        return None, f"HTTP {r.status}: {r.body[:300]!r}"
    err = r.json()["error"]
    prefix = err.get("field", "") + ": "
    msg = err["message"]
    return (msg[len(prefix):] if msg.startswith(prefix) else msg), ""


def cli_message(visiond, verb, option, value, extra, image_path):
    args = [verb, f"--{option}", value]
    if verb == "detect":
        args += ["--model", MODEL]
    args += [str(image_path)] + [str(image_path) for _ in extra]
    p = daemon.run_visiond(visiond, *args)
    prefix = f"visiond: --{option}: "
    lines = [line for line in p.stderr.splitlines() if line.startswith(prefix)]
    if p.returncode != 2 or not lines:
        return None, f"exit {p.returncode}: {p.stderr[:300]!r}"
    return lines[0][len(prefix):], ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    photo = daemon.ROOT / "models" / "faces" / "package" / "demo" / "sample2.jpg"
    image = photo.read_bytes()
    c = daemon.Checks()
    with daemon.Daemon(args.visiond) as d:
        d.wait_ready()
        for route, param, value, verb, option, extra in CASES:
            what = f"{param}={value} / --{option} {value}"
            h, why_h = http_message(d, route, param, value, image)
            c.check("messages", h is not None, f"{what}: HTTP 400", why_h)
            cl, why_c = cli_message(args.visiond, verb, option, value, extra, photo)
            c.check("messages", cl is not None, f"{what}: CLI exit 2 naming --{option}", why_c)
            if h is not None and cl is not None:
                c.check("messages", h == cl, f"{what}: same message", f"HTTP {h!r}\n     CLI  {cl!r}")
        code, err = d.stop()
    c.check("stop", code == 0, "exits 0 on SIGTERM", f"exit {code}\n{err[-1000:]}")
    return c.summary("test_cli_http_messages")


if __name__ == "__main__":
    sys.exit(main())
