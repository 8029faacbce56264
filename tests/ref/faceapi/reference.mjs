// reference.mjs: runs @vladmandic/face-api 1.7.15 (TF.js 4.22, wasm or cpu backend) on images and prints what
// it finds as one JSON document on stdout. It is the reference visiond's face pipeline is tested against
// (issue 4); run it through ./run-reference, which installs node_modules from the lockfile first.
//
//   node reference.mjs [--models DIR] [--backend wasm|cpu] [--input-size 416] [--det-threshold 0.5]
//                      [--raw] [--bench N] [PHOTO...] [--aligned CROP...]
//
// PHOTO: detection (tiny face detector), 68 landmarks and the end-to-end descriptor of every face, through
//   face-api's own chain detectAllFaces(img, TinyFaceDetectorOptions).withFaceLandmarks().withFaceDescriptors().
// CROP (every path after --aligned): an already aligned face chip (e.g. ../shared/faces/dlib_johns/*/*.jpg,
//   150x150) fed straight to the recognition net: faceRecognitionNet.computeFaceDescriptor(tensor).
// --raw: also the detector's raw output grid and the landmark net's crop-relative output.
// --bench N: median latency over N runs (after 2 warm-up runs) of the detector at --input-size on the first
//   photo (detector: from the decoded photo, padding and resize included; detector_net: from the S x S
//   input), the landmark net on its first face, the recognizer on a 150x150 chip, and the whole chain.
// Paths are used as given, relative to the current directory (tests run from the project root, where
// ../shared is). Models default to <project>/models/faces (scripts/fetch-models installs them there).
// Images are decoded by decode_rgb.py (/usr/bin/python3 + cv2.imread, which visiond's decoder matches bit
// for bit, EXIF orientation included), so both sides start from the same RGB bytes.
// Exit: 0 ok, 1 an image or model could not be read, 2 usage, 77 a tool is missing (node_modules, cv2).
//
// Facts the C implementation must match (from face-api's src/, read for 1.7.15; docs/FACES.md has them too,
// with the source file and function of each; numpy_faces.py implements them and checks them against face-api):
//
// Weights (tfjs-core io_utils.decodeWeight): tensors lie in the .bin in manifest order; uint8/uint16 quantized
//   values are float32(q * scale + min) computed in double; shapes are TF layout: conv [kh, kw, cin, cout],
//   depthwise [kh, kw, cin, 1], pointwise [1, 1, cin, cout], fc [in, out].
// "same" padding is TF's: total = max((out - 1) * stride + k - in, 0), before = floor(total / 2), after = rest.
//   So a stride-2 3x3 "same" conv on an even size pads only bottom/right by 1, and a 2x2 stride-1 "same" max
//   pool pads bottom/right by 1; padded cells never win a max pool.
// Resize (NetInput.toBatchTensor -> tf.image.resizeBilinear(x, [s, s], alignCorners=false,
//   halfPixelCenters=false)): src = dst * (in / out) (no half-pixel offset, unlike cv2 INTER_LINEAR);
//   y0 = floor(src), y1 = min(ceil(src), in - 1), lerp along x on both rows, then along y; float32 result.
//   Done on the zero-padded square, not on the image.
// padToSquare (ops/padToSquare.ts), zeros (black before mean subtraction), on the short side:
//   detector (isCenterImage=false): the whole difference after the image (bottom or right);
//   landmark and recognition nets (isCenterImage=true): after = round(diff / 2) (JS round, .5 up),
//   before = diff - after.
// Tiny face detector (tinyFaceDetector/, tinyYolov2/TinyYolov2Base.ts runMobilenet, extractBoxes, detect):
//   input: pad to square (above), resize to S (416 default, multiple of 32), x = (v - [117.001, 114.697,
//   97.404]) / 255 per RGB channel. conv0 3x3 3->16 "valid" (no padding: 416 -> 414) + bias, leaky;
//   maxpool 2x2/2 same; conv1..conv5 = pad 1 all sides, depthwise 3x3 + pointwise 1x1 + bias, leaky
//   (16->32->64->128->256->512), maxpool 2x2/2 same after conv1..conv4, maxpool 2x2/1 same after conv5;
//   (no conv6/conv7); conv8 1x1 512->25 + bias, no activation. 416 -> 414, 207, 104, 52, 26, 13 cells.
//   leaky(x) = relu(x - 0.1f*x) + 0.1f*x = x if x > 0 else 0.1f*x.
//   Output channel = anchor * 5 + k, k = tx, ty, tw, th, obj. score = sigmoid(obj), kept if score > thr
//   (strict). anchors (w, h in cells): (1.603231, 2.094468) (6.041143, 7.080126) (2.882459, 3.518061)
//   (4.266906, 5.178857) (9.041765, 10.66308). With n cells, image W x H, rw = round(W * S / max(W, H)),
//   rh = round(H * S / max(W, H)) (utils computeReshapedDimensions), in image pixels:
//   cx = (col + sigmoid(tx)) / n * S / rw * W, w = exp(tw) * aw / n * S / rw * W (y, h alike with rh, H),
//   box = (cx - w/2, cy - h/2, cx + w/2, cy + h/2), not clipped. Scan order row, col, anchor.
//   NMS (ops/nonMaxSuppression.ts): stable sort by score ascending, take from the end (highest; on equal
//   scores the later in scan order), drop the others whose IoU with it is > 0.4 (IoU = inter / (a1 + a2 -
//   inter), continuous, no +1); no top-k. Output order = pick order (score descending).
// Landmarks (globalApi/DetectFaceLandmarksTasks.ts, dom/extractFaceTensors.ts, faceLandmarkNet/,
//   faceFeatureExtractor/FaceFeatureExtractor.ts, denseBlock.ts):
//   crop = Box.clipAtImageBorders: x = max(x1, 0), y = max(y1, 0), w = min(x2 - x, W - x), h = min(y2 - y,
//   H - y), then x, y, w, h each floored; pixels [y, y+h) x [x, x+w) of the image.
//   input: center pad to square (above), resize to 112, x = (v - [122.782, 117.001, 104.298]) / 255.
//   4 dense blocks (32, 64, 128, 256 channels, each halves the size: 112 -> 56 -> 28 -> 14 -> 7):
//   out1 = relu(conv0(x)) where conv0 is a plain 3x3/2 same conv + bias in dense0 and a separable conv
//   (depthwise 3x3/2 same + pointwise + bias) in dense1..3; out2 = sep1(out1); out3 = sep2(relu(out1 +
//   out2)); out4 = sep3(relu(out1 + out2 + out3)); block = relu(out1 + out2 + out3 + out4); sepN = depthwise
//   3x3/1 same + pointwise + bias, no activation. Then avgpool 7x7/2 valid (the mean of 7x7) and fc 256->136
//   (+ bias): x0, y0, x1, y1, ... in [0, 1] of the 112 square.
//   To pixels (FaceLandmark68NetBase.postProcess, FaceLandmarks, extendWithFaceLandmarks): with crop w x h,
//   s = 112 / max(w, h), padX = (w < h) ? (h - w) * s / 2 : 0, padY likewise, rel_x = (o_x * 112 - padX) /
//   (w * s), rel_y = (o_y * 112 - padY) / (h * s); x = rel_x * w + x1, y = rel_y * h + y1 where (x1, y1) is
//   the detection box's unclipped, unfloored corner (the crop itself started at floor(max(x1, 0))).
// Alignment before recognition (ComputeFaceDescriptorsTasks.ts -> FaceLandmarks.align(null,
//   {useDlibAlignment: true}) -> alignDlib): no rotation, an axis-aligned square from three points:
//   L = mean of points 36..41, R = mean of 42..47, M = mean of 48..67 (image pixels, 0-based);
//   d = (|M - L| + |M - R|) / 2; size = floor(d / 0.45); c = (L + R + M) / 3;
//   x = floor(max(0, c.x - 0.5 * size)), y = floor(max(0, c.y - 0.43 * size));
//   rect = (x, y, min(size, cw + x), min(size, ch + y)) where cw x ch is the LANDMARK CROP's size (a face-api
//   quirk: FaceLandmarks.imageWidth is the crop's); then clipAtImageBorders (above) and slice.
// Recognition (faceRecognitionNet/FaceRecognitionNet.ts, convLayer.ts, residualLayer.ts, scaleLayer.ts):
//   input: center pad to square, resize to 150 (skipped if already 150x150), x = (v - [122.782, 117.001,
//   104.298]) / 255. Every conv: conv + bias, then scale layer (x * weights + biases per channel), then relu
//   unless noted. conv32_down 7x7/2 valid (150 -> 72), maxpool 3x3/2 valid (-> 35); residual = conv 3x3/1
//   same, relu, conv 3x3/1 same (no relu), + input, relu: conv32_1..3; residualDown = conv 3x3/2 VALID,
//   relu, conv 3x3/1 same, + avgpool 2x2/2 valid of the input with zero channels appended up to cout; when
//   the conv branch is one smaller than the pool branch, a zero row (bottom) and column (right) are appended
//   to it; relu. conv64_down (35 -> 17), conv64_1..3, conv128_down (-> 8), conv128_1..2, conv256_down
//   (conv 3, pool 4 -> 4), conv256_1..2, conv256_down_out (conv 1, pool 2 -> 2). Mean over the 2x2, then
//   matmul fc [256, 128], no bias, no L2 normalisation: the descriptor.
// Distance: faceapi.euclideanDistance = sqrt(sum (a - b)^2); FaceMatcher's default threshold is 0.6.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { decodeAll, loadFaceApi } from './setup.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const projectRoot = path.resolve(here, '../../..');

function usage(message) {
  if (message) process.stderr.write(`reference.mjs: ${message}\n`);
  process.stderr.write('usage: node reference.mjs [--models DIR] [--backend wasm|cpu] [--input-size 416] '
    + '[--det-threshold 0.5] [--raw] [--bench N] [PHOTO...] [--aligned CROP...]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opt = {
    models: path.join(projectRoot, 'models', 'faces'),
    backend: 'wasm',
    inputSize: 416,
    detThreshold: 0.5,
    raw: false,
    bench: 0,
    photos: [],
    aligned: [],
  };
  let list = opt.photos;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--models') opt.models = value();
    else if (a === '--backend') opt.backend = value();
    else if (a === '--input-size') opt.inputSize = Number(value());
    else if (a === '--det-threshold') opt.detThreshold = Number(value());
    else if (a === '--raw') opt.raw = true;
    else if (a === '--bench') opt.bench = Number(value());
    else if (a === '--aligned') list = opt.aligned;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else list.push(a);
  }
  if (!['wasm', 'cpu'].includes(opt.backend)) usage('--backend must be wasm or cpu');
  if (!Number.isInteger(opt.inputSize) || opt.inputSize <= 0 || opt.inputSize % 32) usage('--input-size must be a positive multiple of 32');
  if (!(opt.detThreshold > 0 && opt.detThreshold < 1)) usage('--det-threshold must be in (0, 1)');
  if (!Number.isInteger(opt.bench) || opt.bench < 0) usage('--bench must be a count');
  if (!opt.photos.length && !opt.aligned.length) usage('no images');
  return opt;
}

const r4 = (v) => Math.round(v * 1e4) / 1e4;
const r6 = (v) => Math.round(v * 1e6) / 1e6;
const r7 = (v) => Math.round(v * 1e7) / 1e7;
const xyxy = (b) => ({ x1: r4(b.x), y1: r4(b.y), x2: r4(b.x + b.width), y2: r4(b.y + b.height) });
const xywh = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const { tf, faceapi } = await loadFaceApi(opt.backend, opt.models, 'reference.mjs');

  const images = decodeAll([...opt.photos, ...opt.aligned], 'reference.mjs');
  const toTensor = (img) => tf.tensor3d(Int32Array.from(img.rgb), [img.height, img.width, 3], 'int32');
  const detOptions = new faceapi.TinyFaceDetectorOptions({ inputSize: opt.inputSize, scoreThreshold: opt.detThreshold });
  let failed = false;

  const result = {
    reference: 'face-api',
    faceapi_version: faceapi.version,
    tfjs_version: tf.version_core,
    backend: tf.getBackend(),
    wasm_simd: opt.backend === 'wasm' ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : undefined,
    models: opt.models,
    input_size: opt.inputSize,
    det_threshold: opt.detThreshold,
    nms_iou: faceapi.nets.tinyFaceDetector.config.iouThreshold,
    photos: [],
    aligned: [],
  };

  for (const p of opt.photos) {
    const img = images.get(p);
    if (img.error) {
      result.photos.push({ image: p, error: img.error });
      failed = true;
      continue;
    }
    const { width: W, height: H } = img;
    const t = toTensor(img);
    const found = await faceapi.detectAllFaces(t, detOptions).withFaceLandmarks().withFaceDescriptors();
    const entry = { image: p, width: W, height: H, count: found.length, faces: [] };
    for (const f of found) {
      // The two regions face-api cuts out of the image, rebuilt with its own Box methods.
      const landmarkCrop = f.detection.forSize(W, H).box.clipAtImageBorders(W, H);
      const chip = f.landmarks.align(null, { useDlibAlignment: true }).clipAtImageBorders(W, H);
      const face = {
        box: xyxy(f.detection.box),
        det_score: r6(f.detection.score),
        landmark_crop: xywh(landmarkCrop),
        landmarks: f.landmarks.positions.map((pt) => [r4(pt.x), r4(pt.y)]),
        aligned_chip: xywh(chip),
        descriptor: Array.from(f.descriptor, r7),
      };
      if (opt.raw) {
        const crop = tf.slice3d(t, [landmarkCrop.y, landmarkCrop.x, 0], [landmarkCrop.height, landmarkCrop.width, 3]);
        const rel = await faceapi.nets.faceLandmark68Net.forward(crop);
        face.landmarks_raw = Array.from(await rel.data(), r7); // relative to the crop, after postProcess
        tf.dispose([crop, rel]);
      }
      entry.faces.push(face);
    }
    if (opt.raw) {
      const netInput = await faceapi.toNetInput(t);
      const out = faceapi.nets.tinyFaceDetector.forwardInput(netInput, opt.inputSize);
      entry.det_raw_shape = out.shape;
      entry.det_raw = Array.from(await out.data(), r6); // NHWC: [1, n, n, 25], channel = anchor * 5 + k
      out.dispose();
    }
    result.photos.push(entry);
    t.dispose();
  }

  for (const p of opt.aligned) {
    const img = images.get(p);
    if (img.error) {
      result.aligned.push({ image: p, error: img.error });
      failed = true;
      continue;
    }
    const t = toTensor(img);
    const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t);
    result.aligned.push({ image: p, width: img.width, height: img.height, descriptor: Array.from(d, r7) });
    t.dispose();
  }

  if (opt.bench > 0) result.timing_ms = await bench(tf, faceapi, opt, images, toTensor, detOptions);

  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = failed ? 1 : 0;
}

// Median (and min) wall time of N runs after 2 warm-up runs, each awaited until its output is on the host.
async function bench(tf, faceapi, opt, images, toTensor, detOptions) {
  const time = async (fn) => {
    for (let i = 0; i < 2; i++) await fn();
    const ms = [];
    for (let i = 0; i < opt.bench; i++) {
      const t0 = performance.now();
      await fn();
      ms.push(performance.now() - t0);
    }
    return { median: r4(median(ms)), min: r4(Math.min(...ms)), runs: opt.bench };
  };
  const timing = { backend: tf.getBackend() };
  const photo = opt.photos.map((p) => images.get(p)).find((img) => !img.error);
  if (photo) {
    const t = toTensor(photo);
    timing.image = `${photo.width}x${photo.height}`;
    timing.detector = await time(() => faceapi.nets.tinyFaceDetector.locateFaces(t, detOptions));
    // The same on the already padded and resized S x S input: the network plus box decode and NMS only.
    const square = tf.tidy(() => new faceapi.NetInput([t]).toBatchTensor(opt.inputSize, false).squeeze());
    timing.detector_net = await time(() => faceapi.nets.tinyFaceDetector.locateFaces(square, detOptions));
    square.dispose();
    const dets = await faceapi.nets.tinyFaceDetector.locateFaces(t, detOptions);
    if (dets.length) {
      const [crop] = await faceapi.extractFaceTensors(t, [dets[0]]);
      timing.landmarks = await time(() => faceapi.nets.faceLandmark68Net.detectLandmarks(crop));
      crop.dispose();
    }
    timing.full_chain = await time(() => faceapi.detectAllFaces(t, detOptions).withFaceLandmarks().withFaceDescriptors());
    t.dispose();
  }
  const chipImage = opt.aligned.map((p) => images.get(p)).find((img) => !img.error);
  const chip = chipImage ? toTensor(chipImage) : tf.zeros([150, 150, 3], 'int32');
  timing.recognizer = await time(() => faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip));
  timing.recognizer_input = chip.shape.slice(0, 2).join('x');
  chip.dispose();
  return timing;
}

main().catch((e) => {
  process.stderr.write(`reference.mjs: ${e.stack || e}\n`);
  process.exit(1);
});
