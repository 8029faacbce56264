#!/usr/bin/python3
"""Decodes images the way visiond does (cv2.imread, IMREAD_COLOR: libjpeg-turbo, EXIF orientation applied;
visiond's decoder matches it bit for bit) and streams them to reference.mjs as RGB bytes.

For each path on the command line, stdout gets one JSON line {"path", "width", "height"} (or {"path",
"error"}) followed, when there is no error, by width*height*3 bytes: rows top to bottom, pixels R G B.
Exit 77 if cv2 is missing.
"""
import json
import sys

try:
    import cv2
except ImportError:
    print("SKIP: python3-opencv not installed for /usr/bin/python3", file=sys.stderr)
    sys.exit(77)

out = sys.stdout.buffer
for path in sys.argv[1:]:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        out.write((json.dumps({"path": path, "error": "cannot decode"}) + "\n").encode())
        continue
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    out.write((json.dumps({"path": path, "width": width, "height": height}) + "\n").encode())
    out.write(rgb.tobytes())
out.flush()
