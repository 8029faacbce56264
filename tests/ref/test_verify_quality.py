#!/usr/bin/python3
"""Verification quality of visiond (issue 4, acceptance 2) on ../shared/faces/dlib_johns: 5 people x 11
aligned 150x150 face chips, all 1485 pairs, at the default match threshold (Euclidean distance < 0.6).

  1. Each chip's descriptor is computed once, by engine/face.c through visiond_facedump --aligned (the
     function POST /v1/verify runs for aligned=true), with the OpenBLAS kernels the daemon uses.
  2. Every pair is decided by the daemon: POST /v1/verify with the two descriptors as JSON arrays
     (embedding1, embedding2; no match_threshold, so the server's default): its `verified`, `distance`
     and `threshold` make the confusion table. Cross-checked with local distance maths on every pair
     (same decision; the same distance to the JSON's rounding: 1e-6, and 6 significant digits).
  3. A sample of pairs goes through the whole aligned path with the images themselves: POST /v1/verify
     with image1/image2 and aligned=true (multipart; the 10 pairs nearest the threshold, and every 50th
     pair), and `visiond verify --aligned` on a few; each distance within 1e-5 of step 2's, same decision.

Prints the confusion table (same/different person x verified/not), the accuracy and the distance
statistics. Accuracy must be >= 95 %.

usage: test_verify_quality.py --visiond build/visiond [--facedump build/tests/visiond_facedump]
Exit 0 if all pass, 1 on any failure, 77 (skipped) without the face models, the chips or python3-yaml.
"""
import argparse
import itertools
import json
import math
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

ROOT = daemon.ROOT
FACES = ROOT / "models" / "faces"
JOHNS = daemon.SHARED / "faces" / "dlib_johns"
ACCURACY_MIN = 0.95
DEFAULT_THRESHOLD = 0.6


def local_tol(x):
    """The daemon's distance vs ours from the same float descriptors: only the JSON's rounding, to 1e-6
    and then to 6 significant digits (PROTO_JSON_FLAGS): half a unit of each."""
    return 5e-7 + 5e-6 * abs(x) + 1e-12


IMAGE_TOL = 1e-5   # distance from the images (decoded and described by the daemon) vs from the descriptors
SAMPLE_NEAREST = 10
SAMPLE_EVERY = 50
CLI_PAIRS = 4


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def descriptors(facedump, chips, blas_core):
    env = daemon.clean_env({"OPENBLAS_CORETYPE": blas_core} if blas_core else None)
    r = subprocess.run([str(facedump), "--models", str(FACES), "--aligned", *map(str, chips)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, check=False, env=env)
    if r.returncode != 0:
        sys.exit(f"FAIL: visiond_facedump --aligned exited {r.returncode}: {r.stderr[-1000:]}")
    out = {}
    for line in r.stdout.splitlines():
        doc = json.loads(line)
        out[pathlib.Path(doc["image"]).resolve()] = doc["descriptor"]
    return out


def table_text(table, total):
    right = table[(True, True)] + table[(False, False)]
    rows = [
        "| pairs | verified | not verified | total |",
        "|---|---|---|---|",
        f"| same person | {table[(True, True)]} | {table[(True, False)]} | "
        f"{table[(True, True)] + table[(True, False)]} |",
        f"| different people | {table[(False, True)]} | {table[(False, False)]} | "
        f"{table[(False, True)] + table[(False, False)]} |",
        f"| all | {table[(True, True)] + table[(False, True)]} | {table[(True, False)] + table[(False, False)]} "
        f"| {total} |",
    ]
    return "\n".join(rows) + f"\n\naccuracy: {right}/{total} = {right / total:.2%}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--facedump", help="visiond_facedump (default: next to --visiond, in tests/)")
    args = ap.parse_args()
    visiond = pathlib.Path(args.visiond).resolve()
    facedump = pathlib.Path(args.facedump).resolve() if args.facedump else visiond.parent / "tests" / "visiond_facedump"
    chips = sorted(JOHNS.glob("*/*.jpg"))
    if not (FACES / "face_recognition_model-weights_manifest.json").exists() or not chips:
        print(f"SKIP: needs the face models in {FACES} (scripts/fetch-models) and the chips in {JOHNS}")
        return 77
    try:
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as e:
        print(f"SKIP: {e} (needs Debian's python3-yaml and python3-jsonschema: /usr/bin/python3)")
        return 77
    if not facedump.exists():
        print(f"FAIL: visiond_facedump not found at {facedump} (pass --facedump)")
        return 1
    c = daemon.Checks()
    api = daemon.OpenApi()
    people = sorted({p.parent.name for p in chips})
    pairs = list(itertools.combinations(chips, 2))
    print(f"{len(chips)} chips of {len(people)} people, {len(pairs)} pairs")

    with daemon.Daemon(visiond) as d:
        m = re.search(r"BLAS (\w+) x", d.stderr())
        desc = descriptors(facedump, chips, m.group(1) if m else None)
        c.check("descriptors", len(desc) == len(chips) and all(len(v) == 128 for v in desc.values()),
                "one 128-d descriptor per chip", f"{len(desc)} of {len(chips)}")

        # every pair, decided by the daemon from the descriptors
        table = {(s, v): 0 for s in (True, False) for v in (True, False)}
        decided = {}
        same_d, diff_d = [], []
        bad_schema = worst_local = 0
        for a, b in pairs:
            r = d.post_json("/v1/verify", {"embedding1": desc[a.resolve()], "embedding2": desc[b.resolve()]})
            if r.status != 200:
                c.check("pairs", False, f"{a.parent.name}/{a.name} vs {b.parent.name}/{b.name}: 200", repr(r))
                continue
            body = r.json()
            if api.validate("/v1/verify", "POST", 200, body):
                bad_schema += 1
            same = a.parent.name == b.parent.name
            local = dist(desc[a.resolve()], desc[b.resolve()])
            worst_local = max(worst_local, abs(local - body["distance"]) / local_tol(local))
            if body["threshold"] != DEFAULT_THRESHOLD or (local < DEFAULT_THRESHOLD) != body["verified"] \
                    or abs(local - body["distance"]) > local_tol(local):
                c.check("pairs", False, f"{a.name} vs {b.name}: the daemon's answer agrees with local maths",
                        f"{body} vs distance {local}")
            table[(same, body["verified"])] += 1
            decided[(a, b)] = body
            (same_d if same else diff_d).append(body["distance"])
        c.check("pairs", len(decided) == len(pairs), f"all {len(pairs)} pairs answered 200", str(len(decided)))
        c.check("pairs", bad_schema == 0, "every answer matches proto/openapi.yaml", f"{bad_schema} did not")
        c.check("pairs", worst_local <= 1.0, "daemon distance = local Euclidean distance, to the JSON's rounding",
                f"worst {worst_local:.2f} x the rounding")

        # a sample through the whole aligned path, from the images
        by_margin = sorted(decided, key=lambda p: abs(decided[p]["distance"] - DEFAULT_THRESHOLD))
        sample = list(dict.fromkeys(by_margin[:SAMPLE_NEAREST] + pairs[::SAMPLE_EVERY]))
        worst_image = 0.0
        for a, b in sample:
            r = d.post_multipart("/v1/verify", [("image1", (a.name, a.read_bytes(), "image/jpeg")),
                                                ("image2", (b.name, b.read_bytes(), "image/jpeg")),
                                                ("aligned", "true")])
            want = decided[(a, b)]
            ok = r.status == 200
            body = r.json() if ok else {}
            if ok:
                worst_image = max(worst_image, abs(body["distance"] - want["distance"]))
                ok = body["verified"] == want["verified"] and abs(body["distance"] - want["distance"]) <= IMAGE_TOL \
                    and body["faces"] == {"image1": None, "image2": None} \
                    and not api.validate("/v1/verify", "POST", 200, body)
            c.check("images", ok, f"{a.parent.name}/{a.name} vs {b.parent.name}/{b.name} aligned=true from the images: "
                    f"the embeddings' distance and decision", f"{r!r} vs {want['distance']}")
        c.check("images", worst_image <= IMAGE_TOL,
                f"{len(sample)} sampled pairs from the images: distances within {IMAGE_TOL}", f"{worst_image:.2e}")
        code, err = d.stop()
    c.check("daemon", code == 0 and not daemon.sanitizer_report(err), "the daemon exits 0, no sanitizer report",
            f"exit {code} {daemon.sanitizer_report(err)}")

    for a, b in by_margin[:CLI_PAIRS]:
        p = daemon.run_visiond(visiond, "verify", "--aligned", "--models-dir", "models", str(a), str(b), timeout=120)
        want = decided[(a, b)]
        ok = p.returncode == 0
        if ok:
            got = json.loads(p.stdout)
            ok = got["verified"] == want["verified"] and abs(got["distance"] - want["distance"]) <= IMAGE_TOL
        c.check("cli", ok, f"visiond verify --aligned {a.parent.name}/{a.name} {b.parent.name}/{b.name}: the same "
                f"distance and decision", f"exit {p.returncode}: {p.stdout.strip()} vs {want['distance']}")

    total = sum(table.values())
    right = table[(True, True)] + table[(False, False)]
    print(f"\nverification at the default threshold (distance < {DEFAULT_THRESHOLD}), "
          f"POST /v1/verify on the descriptors of all pairs:\n")
    print(table_text(table, total))
    if same_d and diff_d:
        print(f"same person: {len(same_d)} pairs, distance mean {sum(same_d) / len(same_d):.3f}, max "
              f"{max(same_d):.3f}; different people: {len(diff_d)} pairs, mean {sum(diff_d) / len(diff_d):.3f}, "
              f"min {min(diff_d):.3f}")
    print(f"cross-checks: {len(sample)} pairs from the images over HTTP (max |distance difference| "
          f"{worst_image:.1e}), {CLI_PAIRS} with the CLI; local maths on all (worst {worst_local:.2f} x the JSON's "
          f"rounding)\n")
    accuracy = right / total if total else 0.0
    c.check("quality", total == len(pairs), f"all {len(pairs)} pairs decided", str(total))
    c.check("quality", accuracy >= ACCURACY_MIN, f"accuracy >= {ACCURACY_MIN:.0%}", f"{accuracy:.2%}")
    return c.summary("test_verify_quality")


if __name__ == "__main__":
    sys.exit(main())
