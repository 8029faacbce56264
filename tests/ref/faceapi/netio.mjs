// netio.mjs: the raw inputs and outputs of face-api's three networks (@vladmandic/face-api 1.7.15, TF.js 4.22, wasm
// or cpu backend) on real images, for tests/ref/test_onnx_faceapi.py, which runs bench/tfjs2onnx's graphs on the
// same input tensors under ONNX Runtime.
//
//   node netio.mjs --out DIR [--models DIR] [--backend wasm|cpu] [--input-size 416] [--max-faces 2] [--noise]
//                  PHOTO... [--aligned CHIP...]
//
// Each net's input is what its forwardInput makes of the image with face-api's own NetInput.toBatchTensor (pad to
// square, resizeBilinear), before the mean subtraction: float32 NHWC [S, S, 3], RGB 0..255. That tensor is written
// out and then fed back to the net as a NetInput of exactly S x S, so toBatchTensor passes it through unchanged and
// the written tensor is exactly what the net saw. Inputs:
//   tiny_face_detector (S = --input-size): every PHOTO, toBatchTensor(S, false) (zeros after the image);
//   face_landmark_68 (112): the first --max-faces faces face-api's own chain finds in each PHOTO
//     (detectAllFaces(TinyFaceDetectorOptions).withFaceLandmarks()), cut out as it does (extractFaceTensors of the
//     detection box), toBatchTensor(112, true);
//   face_recognition (150): the aligned chips of those faces (landmarks.align(null, {useDlibAlignment: true}), cut
//     out), then every CHIP, toBatchTensor(150, true);
//   --noise: one more input per net, uniform pseudo-random values in [0, 255) (a fixed LCG).
// Outputs, as face-api returns them: detector forwardInput [n, n, 25] (NHWC, channel = anchor * 5 + k); landmark
// net runNet [136] (the fc output, before postProcess); recognition net forwardInput [128].
// Files: DIR/<net>.in.f32 (N inputs, NHWC, little-endian float32, one after the other) and DIR/<net>.out.f32; one
// JSON document on stdout: {faceapi_version, tfjs_version, backend, nets: {<net>: {size, count, labels, out_dims}}}.
// Exit: 0 ok, 1 an image could not be read or found no face, 2 usage, 77 a tool is missing (node_modules, cv2).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { decodeAll, loadFaceApi } from './setup.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function usage(message) {
  process.stderr.write(`netio.mjs: ${message}\nusage: node netio.mjs --out DIR [--models DIR] [--backend wasm|cpu] `
    + '[--input-size 416] [--max-faces 2] [--noise] PHOTO... [--aligned CHIP...]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opt = { models: path.resolve(here, '../../../models/faces'), backend: 'wasm', inputSize: 416, maxFaces: 2,
    noise: false, photos: [], aligned: [] };
  let list = opt.photos;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--out') opt.out = value();
    else if (a === '--models') opt.models = value();
    else if (a === '--backend') opt.backend = value();
    else if (a === '--input-size') opt.inputSize = Number(value());
    else if (a === '--max-faces') opt.maxFaces = Number(value());
    else if (a === '--noise') opt.noise = true;
    else if (a === '--aligned') list = opt.aligned;
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else list.push(a);
  }
  if (!opt.out) usage('--out is required');
  if (!['wasm', 'cpu'].includes(opt.backend)) usage('--backend must be wasm or cpu');
  if (!Number.isInteger(opt.inputSize) || opt.inputSize <= 0 || opt.inputSize % 32) usage('--input-size: a multiple of 32');
  if (!Number.isInteger(opt.maxFaces) || opt.maxFaces < 0) usage('--max-faces must be a count');
  return opt;
}

// One net's inputs and outputs, appended as they are made.
class Sink {
  constructor(dir, net, size) {
    this.net = net;
    this.size = size;
    this.labels = [];
    this.outDims = null;
    this.fin = fs.openSync(path.join(dir, `${net}.in.f32`), 'w');
    this.fout = fs.openSync(path.join(dir, `${net}.out.f32`), 'w');
  }

  async add(label, input, output) {
    const [i, o] = await Promise.all([input.data(), output.data()]);
    fs.writeSync(this.fin, Buffer.from(i.buffer, i.byteOffset, i.byteLength));
    fs.writeSync(this.fout, Buffer.from(o.buffer, o.byteOffset, o.byteLength));
    this.outDims = output.shape.slice(1);
    this.labels.push(label);
  }

  close() {
    fs.closeSync(this.fin);
    fs.closeSync(this.fout);
    return { size: this.size, count: this.labels.length, labels: this.labels, out_dims: this.outDims };
  }
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const { tf, faceapi } = await loadFaceApi(opt.backend, opt.models, 'netio.mjs');
  fs.mkdirSync(opt.out, { recursive: true });

  const det = new Sink(opt.out, 'tiny_face_detector', opt.inputSize);
  const lmk = new Sink(opt.out, 'face_landmark_68', 112);
  const rec = new Sink(opt.out, 'face_recognition', 150);
  // toBatchTensor(size, center) of an image tensor, then the net on that very tensor (see the header)
  const batch = (t, size, center) => new faceapi.NetInput([t]).toBatchTensor(size, center);
  const detector = async (label, t) => {
    const x = batch(t, opt.inputSize, false);
    const y = faceapi.nets.tinyFaceDetector.forwardInput(new faceapi.NetInput([x.squeeze([0])]), opt.inputSize);
    await det.add(label, x, y);
    tf.dispose([x, y]);
  };
  const landmarks = async (label, t) => {
    const x = batch(t, 112, true);
    const y = faceapi.nets.faceLandmark68Net.runNet(new faceapi.NetInput([x.squeeze([0])]));
    await lmk.add(label, x, y);
    tf.dispose([x, y]);
  };
  const recognizer = async (label, t) => {
    const x = batch(t, 150, true);
    const y = faceapi.nets.faceRecognitionNet.forwardInput(new faceapi.NetInput([x.squeeze([0])]));
    await rec.add(label, x, y);
    tf.dispose([x, y]);
  };

  const images = decodeAll([...opt.photos, ...opt.aligned], 'netio.mjs');
  let failed = false;
  const load = (p) => { // the image's tensor, or null (and the run fails) if it could not be read
    const img = images.get(p);
    if (!img.error) return tf.tensor3d(Int32Array.from(img.rgb), [img.height, img.width, 3], 'int32');
    process.stderr.write(`netio.mjs: ${p}: ${img.error}\n`);
    failed = true;
    return null;
  };
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: opt.inputSize, scoreThreshold: 0.5 });
  const chips = [];
  for (const p of opt.photos) {
    const t = load(p);
    if (!t) continue;
    await detector(p, t);
    const found = await faceapi.detectAllFaces(t, options).withFaceLandmarks();
    for (const [i, f] of found.slice(0, opt.maxFaces).entries()) {
      const [crop] = await faceapi.extractFaceTensors(t, [f.detection]);
      await landmarks(`${p} face ${i}`, crop);
      const [chip] = await faceapi.extractFaceTensors(t, [f.landmarks.align(null, { useDlibAlignment: true })]);
      chips.push([`${p} face ${i} aligned`, chip]);
      tf.dispose(crop);
    }
    t.dispose();
  }
  for (const [label, chip] of chips) {
    await recognizer(label, chip);
    chip.dispose();
  }
  for (const p of opt.aligned) {
    const t = load(p);
    if (!t) continue;
    await recognizer(p, t);
    t.dispose();
  }
  if (opt.noise) {
    let s = 12345;
    const noise = (size) => tf.tensor3d(Float32Array.from({ length: size * size * 3 }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s >>> 8) / (1 << 24) * 255;
    }), [size, size, 3]);
    for (const [fn, size] of [[detector, opt.inputSize], [landmarks, 112], [recognizer, 150]]) {
      const t = noise(size);
      await fn('noise', t);
      t.dispose();
    }
  }
  const nets = {};
  for (const sink of [det, lmk, rec]) nets[sink.net] = sink.close();
  if (opt.maxFaces > 0 && opt.photos.length && !lmk.labels.length) {
    process.stderr.write('netio.mjs: no face found in any photo\n');
    failed = true;
  }
  process.stdout.write(`${JSON.stringify({ faceapi_version: faceapi.version, tfjs_version: tf.version_core,
    backend: tf.getBackend(), nets })}\n`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`netio.mjs: ${e.stack || e}\n`);
  process.exit(1);
});
