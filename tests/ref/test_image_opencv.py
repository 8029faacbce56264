#!/usr/bin/python3
"""engine/image.c against OpenCV 4.6, byte for byte.

  decode  : visiond_imgdump FILE            vs cv2.imread(FILE, IMREAD_COLOR), BGR -> RGB
  resize  : visiond_imgdump --raw --resize  vs cv2.resize(INTER_LINEAR) on the same (cv2-decoded) pixels
  input   : visiond_imgdump --input         vs cv2.dnn.blobFromImage (stretch) and a darknet
                                              letterbox built from cv2.resize (letterbox)

Every comparison must have 0 differing bytes. Run by ctest as
  /usr/bin/python3 tests/ref/test_image_opencv.py --visiond <visiond> --imgdump <visiond_imgdump>
(--visiond is accepted like every reference test's, but unused: the helper exposes the engine directly).
Needs Debian's python3-opencv, hence /usr/bin/python3.
"""
import argparse
import pathlib
import struct
import subprocess
import sys
import tempfile

try:
    import cv2
    import numpy as np
except ImportError as e:  # ctest treats 77 as "skipped"
    print(f"SKIP: {e} (install python3-opencv for /usr/bin/python3)")
    sys.exit(77)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIZES = [(320, 320), (416, 416), (608, 608), (150, 150), (1000, 700), (333, 201)]
NET = 416


class Report:
    """Collects one row per comparison and prints them as a table."""

    def __init__(self):
        self.rows = []

    def add(self, check, case, expected, actual):
        ok = expected.shape == actual.shape
        differing = int(np.count_nonzero(expected.view(np.uint8) != actual.view(np.uint8))) if ok else -1
        self.rows.append((check, case, expected.nbytes, differing))

    def fail(self, check, case, why):
        self.rows.append((check, case, 0, -1))
        print(f"FAIL {check} {case}: {why}")

    def print(self):
        print(f"{'check':<8} {'case':<34} {'bytes':>10} {'differing':>10}")
        for check, case, nbytes, differing in self.rows:
            shown = "ERROR" if differing < 0 else str(differing)
            print(f"{check:<8} {case:<34} {nbytes:>10} {shown:>10}")
        for check in dict.fromkeys(r[0] for r in self.rows):
            rows = [r for r in self.rows if r[0] == check]
            print(f"{check}: {len(rows)} comparisons, {sum(r[2] for r in rows)} bytes, "
                  f"{sum(abs(r[3]) for r in rows)} differing")
        return all(r[3] == 0 for r in self.rows)


class Dump:
    """Runs visiond_imgdump, returning (bytes, summary line) or raising RuntimeError."""

    def __init__(self, exe, tmp):
        self.exe, self.out = exe, tmp / "out.bin"

    def __call__(self, *args):
        proc = subprocess.run([self.exe, *map(str, args), "-o", self.out], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip())
        return self.out.read_bytes(), proc.stderr.strip()


def exif_app1(orientation, big_endian):
    """APP1 segment: Exif header + TIFF with IFD0 = {Orientation (SHORT) = orientation}."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(e + "I", 0)
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def make_decode_cases(shared, tmp):
    """The sample photos plus variants OpenCV can write: progressive, gray, 4:4:4, EXIF 2..8, PNGs."""
    cases = sorted((shared / "images").glob("*.jpg"))
    dog = (shared / "images" / "dog.jpg").read_bytes()
    bgr = cv2.imread(str(shared / "images" / "eagle.jpg"), cv2.IMREAD_COLOR)

    def write(name, img, params=()):
        path = tmp / name
        if not cv2.imwrite(str(path), img, list(params)):
            raise RuntimeError(f"cv2.imwrite {name} failed")
        cases.append(path)

    write("eagle_progressive.jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, 90])
    write("eagle_gray.jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR_444"):
        write("eagle_444.jpg", bgr, [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    for o in range(2, 9):  # SOI, then our APP1 ahead of the file's own (orientation 1) one
        path = tmp / f"dog_exif{o}.jpg"
        path.write_bytes(dog[:2] + exif_app1(o, big_endian=o % 2 == 0) + dog[2:])
        cases.append(path)

    crop = bgr[100:250, 200:400]
    alpha = np.tile(np.linspace(0, 255, crop.shape[1], dtype=np.uint8), (crop.shape[0], 1))
    write("crop_bgr8.png", crop)
    write("crop_bgra8.png", np.dstack([crop, alpha]))
    write("crop_gray8.png", cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))
    wide = crop.astype(np.uint16) * 257 + np.arange(crop.size, dtype=np.uint16).reshape(crop.shape) % 251
    write("crop_bgr16.png", wide)
    write("crop_gray16.png", wide[:, :, 1].copy())
    return cases


def check_decode(dump, report, cases):
    for path in cases:
        expected = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
        try:
            data, _ = dump(path)
        except RuntimeError as e:
            report.fail("decode", path.name, e)
            continue
        report.add("decode", path.name, expected, np.frombuffer(data, np.uint8).reshape(expected.shape))


def resize_sizes(w, h):
    extra = [(w, h), (w * 2, h * 2), (w, h // 3)]
    if w % 2 == 0 and h % 2 == 0:
        extra.append((w // 2, h // 2))  # OpenCV's exact-2x INTER_AREA shortcut
    return SIZES + extra


def check_resize_one(dump, report, rgb, raw, size, case):
    h, w = rgb.shape[:2]
    expected = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    try:
        data, _ = dump("--raw", f"{w}x{h}", "--resize", f"{size[0]}x{size[1]}", raw)
    except RuntimeError as e:
        report.fail("resize", case, e)
        return
    report.add("resize", case, expected, np.frombuffer(data, np.uint8).reshape(expected.shape))


def check_resize(dump, report, images, tmp):
    raw = tmp / "src.rgb"
    for name, rgb in images:
        raw.write_bytes(rgb.tobytes())
        h, w = rgb.shape[:2]
        for size in resize_sizes(w, h):
            check_resize_one(dump, report, rgb, raw, size, f"{name} {w}x{h}->{size[0]}x{size[1]}")
    rng = np.random.default_rng(20240611)  # small random images and sizes: borders and odd ratios
    for _ in range(40):
        w, h, dw, dh = (int(v) for v in rng.integers(1, 60, size=4))
        rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        raw.write_bytes(rgb.tobytes())
        check_resize_one(dump, report, rgb, raw, (dw, dh), f"random {w}x{h}->{dw}x{dh}")


def darknet_letterbox(rgb, net):
    """darknet's letterbox_image sizes, our (= OpenCV's) resize, 0.5 fill, pixel * (float)(1/255)."""
    h, w = rgb.shape[:2]
    if np.float32(net) / np.float32(w) < np.float32(net) / np.float32(h):
        new_w, new_h = net, h * net // w
    else:
        new_w, new_h = w * net // h, net
    small = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((3, net, net), 0.5, np.float32)
    x0, y0 = (net - new_w) // 2, (net - new_h) // 2
    out[:, y0:y0 + new_h, x0:x0 + new_w] = small.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255.0)
    scale_x, scale_y = np.float32(new_w) / np.float32(w), np.float32(new_h) / np.float32(h)
    return out, f"scale={scale_x:.9g},{scale_y:.9g} pad={x0},{y0}"


def check_input(dump, report, images, tmp):
    raw = tmp / "src.rgb"
    for name, rgb in images:
        raw.write_bytes(rgb.tobytes())
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        blob = cv2.dnn.blobFromImage(bgr, 1 / 255.0, (NET, NET), swapRB=True, crop=False)[0]
        boxed, mapping = darknet_letterbox(rgb, NET)
        for mode, expected, extra in (("stretch", blob, []), ("letterbox", boxed, ["--letterbox"])):
            case = f"{name} {mode} {NET}x{NET}"
            try:
                data, summary = dump("--raw", f"{w}x{h}", "--input", f"{NET}x{NET}", *extra, raw)
            except RuntimeError as e:
                report.fail("input", case, e)
                continue
            if mode == "letterbox" and not summary.endswith(mapping):
                report.fail("input", case, f"mapping '{summary}' != '{mapping}'")
            report.add("input", case, expected, np.frombuffer(data, np.float32).reshape(expected.shape))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visiond", help="daemon binary (unused here)")
    parser.add_argument("--imgdump", required=True, help="path to the visiond_imgdump helper")
    parser.add_argument("--shared", default=ROOT.parent / "shared", type=pathlib.Path)
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}")

    report = Report()
    with tempfile.TemporaryDirectory(prefix="visiond-image-ref-") as tmpdir:
        tmp = pathlib.Path(tmpdir)
        dump = Dump(args.imgdump, tmp)
        check_decode(dump, report, make_decode_cases(args.shared, tmp))
        images = [(p.stem, cv2.imread(str(p), cv2.IMREAD_COLOR)[:, :, ::-1].copy())
                  for p in sorted((args.shared / "images").glob("*.jpg"))]
        check_resize(dump, report, images, tmp)
        check_input(dump, report, images, tmp)
    ok = report.print()
    print("OK: identical to OpenCV" if ok else "FAIL: differs from OpenCV")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
