// decode.mjs: images decoded by decode_rgb.py (/usr/bin/python3 + cv2.imread, which visiond's decoder matches bit
// for bit, EXIF orientation included), so every face-api script here starts from the same RGB bytes as visiond.
// Used by reference.mjs and netio.mjs.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// RGB bytes of every path, decoded by cv2 in one python process: Map path -> {width, height, rgb} | {error}.
// Exits 77 (skip) when python3 or cv2 is missing.
export function decodeAll(paths, who) {
  const python = process.env.VISIOND_PYTHON || '/usr/bin/python3';
  const r = spawnSync(python, [path.join(here, 'decode_rgb.py'), ...paths], { maxBuffer: 1 << 30 });
  if (r.error || r.status === 77) {
    process.stderr.write(`${who}: SKIP: cannot decode with ${python} + cv2 ${r.error ? r.error.message : r.stderr}\n`);
    process.exit(77);
  }
  if (r.status !== 0) throw new Error(`decode_rgb.py failed: ${r.stderr}`);
  const out = new Map();
  let pos = 0;
  const buf = r.stdout;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    const head = JSON.parse(buf.subarray(pos, nl).toString('utf8'));
    pos = nl + 1;
    if (head.error) {
      out.set(head.path, { error: head.error });
      continue;
    }
    const size = head.width * head.height * 3;
    out.set(head.path, { width: head.width, height: head.height, rgb: buf.subarray(pos, pos + size) });
    pos += size;
  }
  return out;
}
