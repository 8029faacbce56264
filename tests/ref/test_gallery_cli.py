#!/usr/bin/python3
"""`visiond gallery export|import` (issue 15's CLI, and acceptance 6's import cases).

  round trip  a gallery enrolled through a daemon is exported while the daemon serves, imported into an
              empty gallery without a daemon, and exported again: the two files are byte-identical (every
              embedding read back as the same float, names, boxes, scores and creation times kept)
  online      importing into the gallery a daemon serves: the daemon identifies the imported subject
              (it follows the change sequence, not only its own writes)
  refused     a file cut short (inside a line, and at a line boundary before the end line), one from
              another model fingerprint, a NaN, a bad name: exit 1, a message naming the line, and
              nothing imported (the gallery's face count unchanged)

usage: test_gallery_cli.py --visiond build/visiond
Exit 0 if all pass, 1 on any failure, 77 (skipped) without the face models or the chips.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

JOHNS = daemon.SHARED / "faces" / "dlib_johns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not (daemon.ROOT / "models" / "faces").is_dir() or not JOHNS.is_dir():
        print("skipped: face models or chips missing")
        return 77
    c = daemon.Checks()
    people = sorted(p for p in JOHNS.iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory(prefix="visiond-gallery-cli-") as tmp:
        tmp = pathlib.Path(tmp)
        a_dir, b_dir = tmp / "a", tmp / "b"
        a_dir.mkdir()
        b_dir.mkdir()
        with daemon.Daemon(args.visiond, "--data-dir", str(a_dir)) as d:
            for p in people[:3]:
                chips = sorted(p.glob("*.jpg"))[:3]
                fields = [("userid", p.name), ("aligned", "true")]
                fields += [(f"image{i}", (f.name, f.read_bytes(), "image/jpeg")) for i, f in enumerate(chips)]
                r = d.post_multipart("/v1/vision/face/register", fields)
                c.check("setup", r.status == 200, f"register {p.name}", repr(r))
            out1 = tmp / "a.jsonl"
            r = daemon.run_visiond(args.visiond, "gallery", "export", str(out1), "--data-dir", str(a_dir))
            c.check("export", r.returncode == 0 and "exported 9 faces" in r.stderr, "export while the daemon serves",
                    r.stderr)
            lines = out1.read_text().splitlines()
            c.check("export", len(lines) == 11 and '"end":true' in lines[-1], "header, 9 faces, end line",
                    f"{len(lines)} lines")

            r = daemon.run_visiond(args.visiond, "gallery", "import", str(out1), "--data-dir", str(b_dir))
            c.check("import", r.returncode == 0 and "imported 9 faces" in r.stderr, "import into an empty gallery",
                    r.stderr)
            out2 = tmp / "b.jsonl"
            daemon.run_visiond(args.visiond, "gallery", "export", str(out2), "--data-dir", str(b_dir))
            c.check("round-trip", out1.read_bytes() == out2.read_bytes(), "export -> import -> export is identical")

            # online: another process imports into the gallery the daemon serves
            newcomer = people[3]
            chip = sorted(newcomer.glob("*.jpg"))
            r = d.post_multipart("/v1/faces", [("image", (chip[0].name, chip[0].read_bytes(), "image/jpeg"))])
            helper = tmp / "one.jsonl"
            with daemon.Daemon(args.visiond, "--data-dir", str(tmp / "c")) as d2:
                fields = [("userid", newcomer.name), ("aligned", "true"),
                          ("image", (chip[0].name, chip[0].read_bytes(), "image/jpeg"))]
                d2.post_multipart("/v1/vision/face/register", fields)
            daemon.run_visiond(args.visiond, "gallery", "export", str(helper), "--data-dir", str(tmp / "c"))
            r = daemon.run_visiond(args.visiond, "gallery", "import", str(helper), "--data-dir", str(a_dir))
            c.check("online", r.returncode == 0, "import while the daemon serves", r.stderr)
            seen, t0 = None, time.monotonic()
            while time.monotonic() - t0 < 10:
                r = d.post_multipart("/v1/identify", [("aligned", "true"),
                                                      ("image", (chip[1].name, chip[1].read_bytes(), "image/jpeg"))])
                m = r.json()["faces"][0]["match"]
                seen = m and m["subject"]
                if seen == newcomer.name:
                    break
                time.sleep(0.05)
            c.check("online", seen == newcomer.name, "the daemon identifies the imported subject",
                    f"{seen} after {time.monotonic() - t0:.2f} s")
            before = d.get("/v1/gallery").json()["faces"]

            # visiond identify: the daemon's answer, without a daemon
            served = d.post_multipart("/v1/identify", [("aligned", "true"),
                                                       ("image", (chip[1].name, chip[1].read_bytes(), "image/jpeg"))])
            r = daemon.run_visiond(args.visiond, "identify", "--data-dir", str(a_dir), "--aligned", str(chip[1]),
                                   "/nonexistent.jpg")
            out = [json.loads(x) for x in r.stdout.splitlines()]
            c.check("identify-cli", r.returncode == 1 and len(out) == 2 and "error" in out[1],
                    "one line per image, the unreadable one an error, exit 1", r.stdout[-300:] + r.stderr[-200:])
            if out and served.status == 200:
                a_face, b_face = out[0]["faces"][0], served.json()["faces"][0]
                c.check("identify-cli", a_face["match"] == b_face["match"] and a_face["candidates"] == b_face["candidates"],
                        "visiond identify answers as POST /v1/identify", f"{a_face} vs {b_face}")

            # refused files: nothing imported
            text = out1.read_text()
            fp = lines[0].split('"model_fingerprint":"')[1][:64]
            cases = {
                "cut inside a line": text[: len(text) // 2],
                "cut before the end line": "\n".join(lines[:-1]) + "\n",
                "another model": text.replace(fp, "0" * 64),
                "NaN": text.replace(lines[3], lines[3].replace('"embedding":[', '"embedding":[NaN,', 1)),
                "a name with /": text.replace(lines[2], lines[2].replace('"subject":"', '"subject":"a/', 1)),
            }
            for what, body in cases.items():
                bad = tmp / "bad.jsonl"
                bad.write_text(body)
                r = daemon.run_visiond(args.visiond, "gallery", "import", str(bad), "--data-dir", str(a_dir))
                c.check("refused", r.returncode == 1 and "visiond:" in r.stderr, f"{what}: refused with a message",
                        f"{r.returncode} {r.stderr.strip()[:200]}")
            after = d.get("/v1/gallery").json()["faces"]
            c.check("refused", before == after, f"nothing imported ({before} faces before, {after} after)")
            r = daemon.run_visiond(args.visiond, "gallery", "export")
            c.check("usage", r.returncode == 2, "bad usage exits 2")

            code, log = d.stop()
            c.check("daemon", code == 0 and not daemon.sanitizer_report(log), "clean exit", daemon.sanitizer_report(log))

        # enrol a folder of photo folders: all of it, or (a photo without a face) none of it
        e_dir = tmp / "e"
        e_dir.mkdir()
        r = daemon.run_visiond(args.visiond, "gallery", "enroll", str(JOHNS), "--data-dir", str(e_dir))
        c.check("enroll", r.returncode == 1 and "nothing enrolled" in r.stderr,
                "chips without --aligned: no face, nothing enrolled", r.stderr[-300:])
        r = daemon.run_visiond(args.visiond, "gallery", "enroll", str(JOHNS), "--aligned", "--data-dir", str(e_dir))
        c.check("enroll", r.returncode == 0 and "enrolled 55 photos of 5 subjects" in r.stderr,
                "the 55 chips of 5 people with --aligned", r.stderr[-300:])
        r = daemon.run_visiond(args.visiond, "identify", "--aligned", "--data-dir", str(e_dir),
                               str(sorted((JOHNS / "John_Simm").glob("*.jpg"))[4]))
        m = json.loads(r.stdout)["faces"][0]["match"] if r.returncode == 0 else None
        c.check("enroll", m and m["subject"] == "John_Simm" and m["distance"] == 0,
                "an enrolled chip is found at distance 0", r.stdout[:300])
    return c.summary("test_gallery_cli")


if __name__ == "__main__":
    sys.exit(main())
