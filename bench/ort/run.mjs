// ONNX Runtime (onnxruntime-node, CPU execution provider) on one model and one input: the benchmark's ONNX Runtime
// column (bench/bench, bench/run) and the runner of tests/ref/test_onnx_opencv.py and test_onnx_faceapi.py.
//
// usage: node bench/ort/run.mjs --model M.onnx --input IN.f32 --shape 1,3,H,W [--threads N] [--runs R]
//                               [--warmup W] [--out DIR]
// Session: intra-op threads = N, inter-op 1, sequential execution, all graph optimisations on. The input is raw
// little-endian float32 fed to the model's first input. Times session.run() with performance.now(); prints one
// JSON line: {"ort": version, "threads", "median_ms", "min_ms", "cpu_ms", "runs_ms": [...], "outputs": [{name, dims,
// file}]}; cpu_ms is the process's user + system time (every thread's) over the timed runs, per run;
// with --out, each output's data is written to DIR/<name>.f32 after the timed runs.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';

function args(argv) {
  const out = { threads: 1, runs: 1, warmup: 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    out[key] = ['threads', 'runs', 'warmup'].includes(key) ? Number(argv[i + 1]) : argv[i + 1];
  }
  for (const k of ['model', 'input', 'shape']) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const a = args(process.argv);
  const dims = a.shape.split(',').map(Number);
  const buf = fs.readFileSync(a.input);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (data.length !== dims.reduce((x, y) => x * y, 1)) {
    throw new Error(`${a.input}: ${data.length} floats, --shape ${a.shape} needs ${dims.reduce((x, y) => x * y, 1)}`);
  }
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  let result;
  for (let i = 0; i < a.warmup; i++) result = await session.run(feeds);
  const times = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < Math.max(1, a.runs); i++) {
    const t0 = performance.now();
    result = await session.run(feeds);
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const outputs = session.outputNames.map((name) => {
    const t = result[name];
    const o = { name, dims: t.dims };
    if (a.out) {
      o.file = path.join(a.out, `${name}.f32`);
      fs.writeFileSync(o.file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    return o;
  });
  await session.release();
  console.log(JSON.stringify({
    ort: ort.env.versions.node, threads: a.threads, median_ms: median(times), min_ms: Math.min(...times),
    cpu_ms: (cpu.user + cpu.system) / 1000 / times.length, runs_ms: times, outputs,
  }));
}

main().catch((e) => {
  console.error(`bench/ort/run.mjs: ${e.message}`);
  process.exit(1);
});
