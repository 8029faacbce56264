#!/usr/bin/python3
"""A models directory with corrupt YOLO models beside a good one (issue #6, fault tests): the daemon
starts, logs an error naming each broken model and why, keeps /readyz at 503 with the first one's
reason (an operator must look; the face models do the same), lists and serves only the good model, and
answers 404 MODEL_NOT_FOUND for a broken one; then exits 0 on SIGTERM.

Broken models (in a temporary folder; the good one is a symlink to models/yolo-fastest-1.1):
  truncated-weights  the real cfg, the weights cut to 100000 bytes
  garbage-cfg        a cfg whose [convolutional] has filters=oops
  empty-weights      the real cfg and an empty weights file

usage: test_corrupt_model.py --visiond build/visiond   (from the project root)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without models/yolo-fastest-1.1.
"""
import argparse
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

GOOD = daemon.ROOT / "models" / "yolo-fastest-1.1"
BROKEN = {"truncated-weights": "truncated", "garbage-cfg": "filters", "empty-weights": "weights"}


def make_models(root):
    root.mkdir()
    (root / GOOD.name).symlink_to(GOOD)
    cfg = (GOOD / "yolo-fastest-1.1.cfg").read_text()
    weights = (GOOD / "yolo-fastest-1.1.weights").read_bytes()
    contents = {"truncated-weights": (cfg, weights[:100000]),
                "garbage-cfg": ("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=oops\n", b"\0" * 20),
                "empty-weights": (cfg, b"")}
    for name, (text, data) in contents.items():
        d = root / name
        d.mkdir()
        (d / f"{name}.cfg").write_text(text)
        (d / f"{name}.weights").write_bytes(data)
        (d / "coco.names").write_bytes((GOOD / "coco.names").read_bytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (GOOD / "yolo-fastest-1.1.weights").exists():
        print("SKIP: needs models/yolo-fastest-1.1 (scripts/fetch-models)")
        return 77
    c = daemon.Checks()
    g = "corrupt-model"
    dog = (daemon.SHARED / "images" / "dog.jpg").read_bytes()
    with tempfile.TemporaryDirectory(prefix="visiond-corrupt-") as tmp:
        models = pathlib.Path(tmp) / "models"
        make_models(models)
        with daemon.Daemon(args.visiond, "--models", str(models), "--default-model", GOOD.name) as d:
            r = d.get("/readyz")
            msg = r.json().get("error", {}).get("message", "") if r.status == 503 else ""
            c.check(g, r.status == 503 and "not loaded" in msg and any(n in msg for n in BROKEN),
                    "/readyz: 503 naming a broken model and why", repr(r))
            r = d.get("/healthz")
            c.check(g, r.status == 200, "/healthz: 200 (alive)", repr(r))
            r = d.get("/v1/models")
            names = [m["name"] for m in r.json().get("models", [])] if r.status == 200 else []
            c.check(g, GOOD.name in names and not set(names) & set(BROKEN), "/v1/models lists only the good model",
                    str(names))
            r = d.post_raw("/v1/detect", dog, "image/jpeg")
            c.check(g, r.status == 200 and r.json()["count"] >= 2, "the good model serves the dog", repr(r))
            for name in BROKEN:
                r = d.post_raw("/v1/detect", dog, "image/jpeg", query={"model": name})
                c.check(g, r.status == 404 and r.json()["error"]["code"] == "MODEL_NOT_FOUND",
                        f"model={name}: 404 MODEL_NOT_FOUND", repr(r))
            code, err = d.stop()
        errors = [x for x in d.log_records() if x.get("level") == "error"]
        for name, why in BROKEN.items():
            mine = [x["msg"] for x in errors if f"model {name} not loaded" in x.get("msg", "")]
            c.check(g, len(mine) == 1 and why in mine[0], f"one error log line for {name}, saying why ({why})",
                    str(mine or errors))
        c.check(g, code == 0, "exits 0 on SIGTERM", f"exit {code}; its stderr ends:\n{err[-1500:]}")
        c.check(g, not daemon.sanitizer_report(err), "no sanitizer report", daemon.sanitizer_report(err))
    return c.summary("test_corrupt_model")


if __name__ == "__main__":
    sys.exit(main())
