// setup.mjs: what every face-api script here (reference.mjs, netio.mjs) starts with: face-api 1.7.15 loaded with
// its three nets on TF.js's wasm or cpu backend, and images decoded by decode_rgb.py (/usr/bin/python3 +
// cv2.imread, which visiond's decoder matches bit for bit, EXIF orientation included), so every script starts from
// the same RGB bytes as visiond.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// {tf, faceapi} with the tiny face detector, the 68-landmark net and the recognition net loaded from `models`.
// Exits 77 (skip) when the node modules are missing, 1 when a model is.
export async function loadFaceApi(backend, models, who) {
  let tf;
  let faceapi;
  try {
    tf = require('@tensorflow/tfjs');
    if (backend === 'wasm') require('@tensorflow/tfjs-backend-wasm'); // registers the backend; wasm files from its dist/
    faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js'); // the node build that needs no tfjs-node
  } catch (e) {
    process.stderr.write(`${who}: SKIP: node modules missing (run ./run-reference or npm ci): ${e.message}\n`);
    process.exit(77);
  }
  for (const name of ['tiny_face_detector_model', 'face_landmark_68_model', 'face_recognition_model']) {
    if (!existsSync(path.join(models, `${name}-weights_manifest.json`))) {
      process.stderr.write(`${who}: ${models}/${name}-weights_manifest.json missing: run scripts/fetch-models\n`);
      process.exit(1);
    }
  }
  await tf.setBackend(backend);
  await tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromDisk(models);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(models);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(models);
  return { tf, faceapi };
}

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
