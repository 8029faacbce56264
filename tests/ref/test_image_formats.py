#!/usr/bin/python3
"""WebP, HEIC and AVIF photos (issue 14): our decoder against Debian's reference decoders, byte for byte,
and the daemon's detections on them against its detections on PNGs of the same pixels.

The files are made here from ../shared/images with Debian's encoders (cwebp, img2webp, heif-enc) and
tests/tools/heifenc.c (HEIF orientation irot/imir plus an EXIF orientation, which heif-enc cannot write):

  lossless WebP   decoded pixels == the PNG's; detections == those on the PNG
  lossy WebP      decoded pixels == dwebp's and cv2.imread's; detections == those on a PNG of dwebp's output
  WebP + alpha    RGB == dwebp's RGB (alpha dropped, not composited)
  animated WebP   == frame 1 as `webpmux -get frame 1` + dwebp decode it
  HEIC, AVIF      decoded pixels == heif-convert's; detections == those on a PNG of its output
  HEIC rotated    irot 90 + EXIF 6: == heif-convert's output, == the plain file's pixels turned once
                  (not twice); the daemon reports the upright size and exif_rotated false
  WebP named .jpg multipart file "photo.jpg", Content-Type image/jpeg: 200, same detections
  GIF             415 whose message lists the accepted formats

Every answer is validated against proto/openapi.yaml.
usage: test_image_formats.py --visiond build/visiond --imgdump build/tests/visiond_imgdump
                             --heifenc build/tests/visiond_heifenc     (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without python3-opencv, -yaml, -jsonschema.
"""
import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

try:
    import cv2
    import numpy as np
    import jsonschema  # noqa: F401
    import yaml  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (needs Debian's python3-opencv, python3-yaml, python3-jsonschema: /usr/bin/python3)")
    sys.exit(77)

PHOTOS = ["dog.jpg", "person.jpg", "horses.jpg"]
TOOLS = ["cwebp", "dwebp", "img2webp", "webpmux", "heif-enc", "heif-convert"]


def run(*cmd):
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=300)


def ours(imgdump, path):
    """(format, H x W x 3 RGB) from visiond_imgdump."""
    p = subprocess.run([str(imgdump), str(path)], capture_output=True, check=True, timeout=120)
    head = p.stderr.decode().split()
    w, h = int(head[0]), int(head[1])
    return head[2].split("=")[1], np.frombuffer(p.stdout, np.uint8).reshape(h, w, 3)


def ref_rgb(path):
    """RGB of a PNG/PPM written by a reference decoder (alpha, if any, dropped)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise RuntimeError(f"cv2 cannot read {path}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def png_of(rgb, path):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def diff(a, b):
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    return int((a != b).sum())


class Run:
    def __init__(self, args, tmp, d, api):
        self.args, self.tmp, self.d, self.api = args, tmp, d, api
        self.checks = daemon.Checks()

    def detect(self, path, filename=None, content_type="application/octet-stream"):
        data = pathlib.Path(path).read_bytes()
        r = self.d.post_multipart("/v1/detect", [("image", (filename or pathlib.Path(path).name, data,
                                                            content_type))])
        body = r.json()
        problems = self.api.validate("/v1/detect", "POST", r.status, body)
        self.checks.check("openapi", not problems, f"/v1/detect on {pathlib.Path(path).name}", "; ".join(problems))
        return r.status, body

    def same_pixels(self, group, name, mine, ref):
        n = diff(mine, ref)
        self.checks.check(group, n == 0, f"{name}: decoded pixels equal the reference", f"{n} bytes differ")
        print(f"  {group:14} {name:28} {mine.shape[1]}x{mine.shape[0]}  differing bytes: {n}")

    def same_detections(self, group, name, path, png, **kw):
        s1, a = self.detect(path, **kw)
        s2, b = self.detect(png)
        ok = s1 == 200 and s2 == 200 and a["detections"] == b["detections"]
        self.checks.check(group, ok, f"{name}: detections equal those on the PNG of the same pixels",
                          f"{s1} {a.get('detections', a)} vs {s2} {b.get('detections', b)}")
        if ok:
            labels = sorted({x["label"] for x in a["detections"]})
            print(f"  {group:14} {name:28} {len(a['detections'])} detections, same as PNG: {labels}")
        return a

    def photo(self, name):
        t = self.tmp
        stem = pathlib.Path(name).stem
        rgb = cv2.cvtColor(cv2.imread(str(daemon.SHARED / "images" / name)), cv2.COLOR_BGR2RGB)
        png = png_of(rgb, t / f"{stem}.png")

        ll = t / f"{stem}_lossless.webp"
        run("cwebp", "-quiet", "-lossless", "-exact", png, "-o", ll)
        fmt, mine = ours(self.args.imgdump, ll)
        self.checks.check("webp-lossless", fmt == "WebP", f"{ll.name} sniffed as WebP", fmt)
        self.same_pixels("webp-lossless", ll.name, mine, rgb)
        self.same_detections("webp-lossless", ll.name, ll, png)

        lossy = t / f"{stem}_q75.webp"
        run("cwebp", "-quiet", "-q", "75", png, "-o", lossy)
        run("dwebp", "-quiet", lossy, "-ppm", "-o", t / f"{stem}_q75.ppm")
        _, mine = ours(self.args.imgdump, lossy)
        ref = ref_rgb(t / f"{stem}_q75.ppm")
        self.same_pixels("webp-lossy", lossy.name + " (dwebp)", mine, ref)
        self.same_pixels("webp-lossy", lossy.name + " (cv2)", mine,
                         cv2.cvtColor(cv2.imread(str(lossy), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        self.same_detections("webp-lossy", lossy.name, lossy, png_of(ref, t / f"{stem}_q75_ref.png"))
        if name == PHOTOS[0]:
            self.same_detections("webp-as-jpg", "WebP named photo.jpg", lossy,
                                 png_of(ref, t / f"{stem}_q75_ref.png"), filename="photo.jpg",
                                 content_type="image/jpeg")

        for kind, flags in (("heic", []), ("avif", ["-A"])):
            f = t / f"{stem}.{kind}"
            run("heif-enc", *flags, "-q", "60", png, "-o", f)
            run("heif-convert", f, t / f"{stem}_{kind}.png")
            fmt, mine = ours(self.args.imgdump, f)
            self.checks.check(kind, fmt == kind.upper(), f"{f.name} sniffed as {kind.upper()}", fmt)
            ref = ref_rgb(t / f"{stem}_{kind}.png")
            self.same_pixels(kind, f.name + " (heif-convert)", mine, ref)
            self.same_detections(kind, f.name, f, png_of(ref, t / f"{stem}_{kind}_ref.png"))

    def alpha_and_animation(self):
        t = self.tmp
        bgr = cv2.imread(str(daemon.SHARED / "images" / "dog.jpg"))
        bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
        bgra[::3, :, 3] = 0
        bgra[1::3, :, 3] = 90
        cv2.imwrite(str(t / "alpha.png"), bgra)
        run("cwebp", "-quiet", "-q", "80", t / "alpha.png", "-o", t / "alpha.webp")
        run("dwebp", "-quiet", t / "alpha.webp", "-o", t / "alpha_ref.png")
        _, mine = ours(self.args.imgdump, t / "alpha.webp")
        self.same_pixels("webp-alpha", "alpha.webp (dwebp RGB)", mine, ref_rgb(t / "alpha_ref.png"))

        cv2.imwrite(str(t / "f1.png"), bgr)
        cv2.imwrite(str(t / "f2.png"), 255 - bgr)
        run("img2webp", "-loop", "0", "-lossy", "-q", "70", t / "f1.png", "-d", "100", t / "f2.png",
            "-o", t / "anim.webp")
        run("webpmux", "-get", "frame", "1", t / "anim.webp", "-o", t / "frame1.webp")
        run("dwebp", "-quiet", t / "frame1.webp", "-ppm", "-o", t / "frame1.ppm")
        fmt, mine = ours(self.args.imgdump, t / "anim.webp")
        self.same_pixels("webp-animated", "anim.webp frame 1", mine, ref_rgb(t / "frame1.ppm"))

    def heif_rotation(self):
        t = self.tmp
        png = t / "dog.png"
        for kind, flags in (("heic", []), ("avif", ["--avif"])):
            plain, rot = t / f"plain.{kind}", t / f"rot.{kind}"
            run(self.args.heifenc, *flags, png, plain)
            run(self.args.heifenc, *flags, "--orientation", "6", "--exif", "6", png, rot)
            run("heif-convert", rot, t / f"rot_{kind}.png")
            _, p = ours(self.args.imgdump, plain)
            _, r = ours(self.args.imgdump, rot)
            self.same_pixels(f"{kind}-irot", f"rot.{kind} (heif-convert)", r, ref_rgb(t / f"rot_{kind}.png"))
            self.same_pixels(f"{kind}-irot", f"rot.{kind} = plain turned once", r, np.rot90(p, k=-1))
            status, body = self.detect(rot)
            img = body.get("image", {})
            self.checks.check(f"{kind}-irot", status == 200 and img.get("width") == 576 and
                              img.get("height") == 768 and img.get("exif_rotated") is False,
                              f"daemon: rot.{kind} is 576x768 upright, EXIF not applied again", str(img))

    def gif_415(self):
        gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00," \
              b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
        r = self.d.post_raw("/v1/detect", gif, "image/gif")
        body = r.json()
        msg = body.get("error", {}).get("message", "")
        self.checks.check("415", r.status == 415 and "PNG, JPEG, WebP, HEIC, AVIF" in msg and "GIF" in msg,
                          "a GIF gets 415 listing the accepted formats and naming GIF", f"{r.status} {msg}")
        problems = self.api.validate("/v1/detect", "POST", r.status, body)
        self.checks.check("openapi", not problems, "415 answer", "; ".join(problems))
        print(f"  415            GIF: {msg}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    ap.add_argument("--imgdump", required=True)
    ap.add_argument("--heifenc", required=True)
    args = ap.parse_args()
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        print(f"FAIL: missing {' '.join(missing)} (scripts/install-deps installs webp, libheif-examples)")
        return 1
    if not (daemon.SHARED / "images" / "dog.jpg").is_file():
        print(f"SKIP: no {daemon.SHARED / 'images'}")
        return 77
    api = daemon.OpenApi()
    with tempfile.TemporaryDirectory() as tmp, daemon.Daemon(args.visiond) as d:
        run_ = Run(args, pathlib.Path(tmp), d, api)
        for name in PHOTOS:
            run_.photo(name)
        run_.alpha_and_animation()
        run_.heif_rotation()
        run_.gif_415()
        return run_.checks.summary("test_image_formats")


if __name__ == "__main__":
    sys.exit(main())
