#!/usr/bin/env node
// Per-node time of ONNX Runtime's CPU forward, from its own profiler: the counterpart of
// benchmarks/onednn_layers.py for our side (docs/performance.md, "what stands in the way").
//     node onnxruntime_profile.js NODE_MODULES THREADS FILE.onnx BATCH [RUNS]
// The input is 1x28x28 for a file whose name holds "resnet20" and 3x224x224 otherwise (the models
// bench_deploy exports). Runs RUNS forwards (default 6) at the given batch with all graph optimisations, profiling on,
// and prints the last forward's kernel time per operator type and its costliest nodes with their
// shapes. Profiling adds a little per node; read shares and rates, not the total, against an
// unprofiled run.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

async function main() {
  const [modules, threads, file, batchArg, runsArg] = process.argv.slice(2);
  if (!file || !batchArg) throw new Error('usage: onnxruntime_profile.js NODE_MODULES THREADS FILE.onnx BATCH [RUNS]');
  const ort = require(path.join(modules, 'onnxruntime-node'));
  const prefix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ortprof-')), 'trace');
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix});
  const batch = Number(batchArg), runs = Number(runsArg || 6);
  const shape = path.basename(file).includes('resnet20') ? [1, 28, 28] : [3, 224, 224];
  const size = batch * shape.reduce((a, b) => a * b, 1);
  const feeds = {input: new ort.Tensor('float32', Float32Array.from({length: size}, () => Math.random() * 2 - 1),
                                       [batch, ...shape])};
  const walls = [];
  for (let r = 0; r < runs; ++r) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    walls.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  session.endProfiling();
  const dir = path.dirname(prefix);
  const trace = fs.readdirSync(dir).map((f) => path.join(dir, f)).find((f) => f.endsWith('.json'));
  const events = JSON.parse(fs.readFileSync(trace, 'utf8'));
  // The last forward: the node events after the last "model_run" event's start.
  const runsEv = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const last = runsEv[runsEv.length - 1];
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= last.ts &&
                                     e.ts <= last.ts + last.dur);
  const byOp = new Map();
  let total = 0;
  for (const e of nodes) {
    const op = e.args.op_name;
    const v = byOp.get(op) || {calls: 0, us: 0};
    v.calls++;
    v.us += e.dur;
    byOp.set(op, v);
    total += e.dur;
  }
  console.log(`${path.basename(file)} batch ${batch}, ${threads} threads: forwards ${walls.map((w) => w.toFixed(1)).join(' ')} ms` +
              ` (profiled); last forward's kernels ${(total / 1e3).toFixed(1)} ms in ${nodes.length} nodes`);
  console.log('| operator | calls | ms | share |\n|---|---:|---:|---:|');
  for (const [op, v] of [...byOp].sort((a, b) => b[1].us - a[1].us))
    console.log(`| ${op} | ${v.calls} | ${(v.us / 1e3).toFixed(1)} | ${(100 * v.us / total).toFixed(0)} % |`);
  // Convolutions grouped by shape, named as benchmarks/onednn_layers.py names oneDNN's problems
  // (icCoK_ihHohH kh, sh), with GFLOP/s = 2 * N * C_in/g * C_out * H_out * W_out * kh * kw / time.
  const shapes = new Map();
  for (const e of nodes.filter((n) => n.args.op_name === 'Conv')) {
    const ins = (e.args.input_type_shape || []).map((o) => Object.values(o)[0]);
    const out = Object.values((e.args.output_type_shape || [{}])[0])[0];
    if (!ins[0] || !ins[1] || !out) continue;
    const [n, , h] = ins[0], [oc, icg, kh, kw] = ins[1], [, , oh, ow] = out;
    const ic = ins[0][1] * (ins[0].length === 5 ? ins[0][4] : 1);  // NCHWc: [N, C/c, H, W, c]
    const key = `ic${ic}oc${oc}_ih${h}oh${oh}kh${kh}sh${Math.round(h / oh)}`;
    const v = shapes.get(key) || {calls: 0, us: 0, flop: 0};
    v.calls++;
    v.us += e.dur;
    v.flop += 2 * n * icg * oc * oh * ow * kh * kw;
    shapes.set(key, v);
  }
  console.log('\nconvolutions by shape:\n| calls | ms | GFLOP/s | shape |\n|---:|---:|---:|---|');
  for (const [key, v] of [...shapes].sort((a, b) => b[1].us - a[1].us))
    console.log(`| ${v.calls} | ${(v.us / 1e3).toFixed(1)} | ${(v.flop / v.us / 1e3).toFixed(0)} | ${key} |`);
  fs.rmSync(dir, {recursive: true, force: true});
}

main().catch((e) => {
  console.error('onnxruntime_profile.js: ' + (e.message || e));
  process.exit(1);
});
