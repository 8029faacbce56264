#!/usr/bin/python3
"""Builds the fuzz targets' seed corpora from the project's test data, at run time, into OUT/<target>/.

Nothing from ../shared is copied into the repository: photos and model files are read from ../shared and
./models when present and written only to OUT (scripts/fuzz uses a scratch folder). Sources:
  png, jpeg        ../shared/images shrunk and re-encoded (colour kinds, progressive, EXIF orientation in
                   JPEG APP1 and PNG eXIf, both byte orders), headers declaring huge sizes, truncations
  webp, heif       the same shrunk photos through cwebp (lossy, lossless, alpha), img2webp (animated),
                   heif-enc (HEIC, AVIF), and truncations (Debian's webp and libheif-examples)
  darknet_cfg      ../shared/models/cfg/*.cfg, models/*/*.cfg, tests/darknet_invalid/*/model.cfg
  darknet_weights  each tests/darknet_invalid case with weights.spec: cfg, a 0 byte, its weights image
  tfjs             models/faces manifests pointed at the shard a.bin (shard appended when small)
  proto            the bad-request cases' JSON bodies, query strings and form fields, behind a selector byte
  http             the bad-request cases as raw HTTP requests (photos cut to 1 KiB)
Hand-made seeds in fuzz/corpus/<target>/ are added by scripts/fuzz itself.
Usage: /usr/bin/python3 fuzz/seeds.py OUT"""
import hashlib
import pathlib
import struct
import sys
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests" / "ref"))


def put(out, target, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


# ---- images --------------------------------------------------------------------------------------

def exif_tiff(orientation, big_endian):
    """A TIFF/EXIF payload whose IFD0 holds one Orientation entry."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    return head + ifd + struct.pack(e + "I", 0)


def jpeg_with_exif(jpeg, tiff):
    app1 = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_exif(png, tiff):
    end = 8 + 4 + 4 + 13 + 4  # after IHDR
    return png[:end] + png_chunk(b"eXIf", tiff) + png[end:]


def image_seeds(out):
    try:
        import cv2
        import numpy as np
    except ImportError:
        print("seeds: no cv2 (python3-opencv): image seeds are only the hand-made ones", file=sys.stderr)
        return
    photos = sorted((SHARED / "images").glob("*.jpg"))
    imgs = [cv2.resize(cv2.imread(str(p)), (24, 16)) for p in photos[:3]]
    if not imgs:
        imgs = [np.random.default_rng(1).integers(0, 255, (16, 24, 3), dtype=np.uint8)]
    for i, img in enumerate(imgs):
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
        for variant in (img, gray, bgra, (img.astype(np.uint16) * 257)):
            ok, enc = cv2.imencode(".png", variant)
            put(out, "png", enc.tobytes())
        ok, enc = cv2.imencode(".png", img)
        png = enc.tobytes()
        for o in range(1, 9):
            put(out, "png", png_with_exif(png, exif_tiff(o, o % 2 == 0)))
        put(out, "png", png[:len(png) // 2])
        for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_QUALITY, 20]):
            ok, enc = cv2.imencode(".jpg", img, params)
            put(out, "jpeg", enc.tobytes())
        ok, enc = cv2.imencode(".jpg", gray)
        put(out, "jpeg", enc.tobytes())
        ok, enc = cv2.imencode(".jpg", img)
        jpeg = enc.tobytes()
        for o in range(1, 9):
            put(out, "jpeg", jpeg_with_exif(jpeg, exif_tiff(o, o % 2 == 1)))
        put(out, "jpeg", jpeg[:len(jpeg) // 2])
    webp_heif_seeds(out, imgs)
    try:
        import test_http_bad as bad
        for w, h in ((100000, 100000), (8000, 5000), (1, 1), (0, 16)):
            put(out, "png", bad.png_header(w, h))
            if w <= 65535:  # a JPEG's sizes are 16-bit
                put(out, "jpeg", bad.jpeg_header(w, h))
    except Exception as e:  # the reference tests' helpers are optional here
        print(f"seeds: no huge-header seeds ({e})", file=sys.stderr)


def webp_heif_seeds(out, imgs):
    """WebP and HEIF seeds made by Debian's encoders from PNGs of the shrunk photos."""
    import shutil
    import subprocess
    import tempfile
    import cv2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for i, img in enumerate(imgs):
            png = tmp / f"{i}.png"
            cv2.imwrite(str(png), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA) if i == 1 else img)
            runs = [("webp", ["cwebp", "-quiet", "-q", "50"]), ("webp", ["cwebp", "-quiet", "-lossless"]),
                    ("heif", ["heif-enc", "-q", "30"]), ("heif", ["heif-enc", "-A", "-q", "30"])]
            for k, (target, cmd) in enumerate(runs):
                if not shutil.which(cmd[0]):
                    print(f"seeds: no {cmd[0]}: no {target} seeds from it", file=sys.stderr)
                    continue
                dst = tmp / f"{i}-{k}.out"
                subprocess.run(cmd + [str(png), "-o", str(dst)], check=True, capture_output=True)
                data = dst.read_bytes()
                put(out, target, data)
                put(out, target, data[:len(data) // 2])
        if shutil.which("img2webp") and len(imgs) > 1:
            pngs = [str(tmp / f"{i}.png") for i in range(2)]
            anim = tmp / "anim.webp"
            subprocess.run(["img2webp", "-loop", "0", "-lossy"] + pngs + ["-o", str(anim)], check=True,
                           capture_output=True)
            put(out, "webp", anim.read_bytes())


# ---- darknet -------------------------------------------------------------------------------------

def weights_from_spec(spec):
    """tests/darknet_invalid/README.md's weights.spec recipe, as tests/test_darknet.c builds it."""
    major, minor, revision, seen, floats, fill, extra, nbytes = 0, 2, 0, 0, 0, 0.5, 0, -1
    for line in spec.splitlines():
        w = line.split()
        if not w or w[0].startswith("#"):
            continue
        if w[0] == "version":
            major, minor, revision = int(w[1]), int(w[2]), int(w[3])
        elif w[0] == "seen-bytes":
            seen = int(w[1])
        elif w[0] == "floats":
            floats = int(w[1])
        elif w[0] == "header-only":
            floats = 0
        elif w[0] == "fill":
            fill = float(w[1])
        elif w[0] == "extra-bytes":
            extra = int(w[1])
        elif w[0] == "bytes":
            nbytes = int(w[1])
    if nbytes >= 0:
        return bytes(nbytes)
    wide = seen == 8 if seen else (major * 10 + minor >= 2 and major < 1000 and minor < 1000)
    head = struct.pack("<iii", major, minor, revision) + bytes(8 if wide else 4)
    return head + struct.pack(f"<{floats}f", *([fill] * floats)) + bytes(extra)


def darknet_seeds(out):
    cfgs = list((SHARED / "models" / "cfg").glob("*.cfg")) + list((ROOT / "models").glob("*/*.cfg"))
    for p in cfgs:
        put(out, "darknet_cfg", p.read_bytes())
    for case in sorted((ROOT / "tests" / "darknet_invalid").iterdir()):
        cfg = case / "model.cfg"
        if not cfg.is_file():
            continue
        text = cfg.read_bytes().replace(b"<NUL>", b"\0")
        put(out, "darknet_cfg", text)
        spec = case / "weights.spec"
        if spec.is_file() and b"\0" not in text:
            put(out, "darknet_weights", text + b"\0" + weights_from_spec(spec.read_text()))


# ---- TF.js ---------------------------------------------------------------------------------------

def tfjs_seeds(out):
    import json
    for m in sorted((ROOT / "models" / "faces").glob("*-weights_manifest.json")):
        groups = json.loads(m.read_text())
        shard = b"".join((m.parent / p).read_bytes() for g in groups for p in g["paths"])
        for g in groups:
            g["paths"] = ["a.bin"]
        groups = [{"paths": ["a.bin"], "weights": [w for g in groups for w in g["weights"]]}]
        text = json.dumps(groups).encode()
        put(out, "tfjs", text + b"\0" + (shard if len(shard) <= (256 << 10) else shard[:4096]))


# ---- requests ------------------------------------------------------------------------------------

def bad_cases():
    """(method, path, [(name, value)], body, raw) of each bad-request case, photos cut to 1 KiB. The
    reference test's parser is the one definition of the case format; its result is read loosely (the
    first four fields; a fifth means "sent as written", without Content-Length)."""
    try:
        import test_http_bad as bad
    except Exception as e:
        print(f"seeds: no request cases ({e})", file=sys.stderr)
        return []
    real_source = bad.source

    def small_source(spec, folder):
        data = real_source(spec, folder)
        return data[:1024] if spec.startswith(("image", "photo-png", "random")) else data
    bad.source = small_source  # parse_request and nested sources look it up by name
    cases = []
    for folder in (ROOT / "tests" / "bad", ROOT / "tests" / "http_bad"):
        if not folder.is_dir():
            continue
        for case in sorted(folder.iterdir()):
            if (case / "request").is_file():
                try:
                    r = bad.parse_request(case)
                    headers = list(r[2].items()) if isinstance(r[2], dict) else list(r[2])
                    cases.append((r[0], r[1], headers, r[3], len(r) > 4))
                except Exception as e:
                    print(f"seeds: skipped {case.name}: {e}", file=sys.stderr)
    return cases


def raw_http(method, path, headers, body, raw):
    head = [f"{method} {path} HTTP/1.1", "Host: fuzz"]
    chunked = any(k.lower() == "transfer-encoding" for k, _ in headers)
    head += [f"{k}: {v}" for k, v in headers]
    body = body or b""
    if raw:
        pass
    elif chunked:
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
    elif body or method == "POST":
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


MAX_SEED = 65536  # larger cases (limit tests) are about sizes, not structure
ROUTE_BITS = {"/v1/detect": 0, "/v1/vision/detection": 4, "/v1/faces": 1, "/v1/vision/face": 5,
              "/v1/verify": 2, "/v1/vision/face/match": 6}


def request_seeds(out):
    for method, path, headers, body, raw in bad_cases():
        request = raw_http(method, path, headers, body, raw)
        if len(request) <= MAX_SEED:
            put(out, "http", request)
        route, _, query = path.partition("?")
        sel = ROUTE_BITS.get(route, 0)
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if body is not None and ctype.startswith("application/json") and len(body) <= MAX_SEED:
            put(out, "proto", bytes([sel]) + body)
        if query:
            put(out, "proto", bytes([sel | 8]) + query.encode("latin-1"))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    image_seeds(out)
    darknet_seeds(out)
    tfjs_seeds(out)
    request_seeds(out)
    for d in sorted(out.iterdir()):
        print(f"seeds: {d.name}: {sum(1 for _ in d.iterdir())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
