#!/usr/bin/env node
// ONNX Runtime's CPU speed on ONNX files (benchmarks/bench_deploy.sh): median ms per run at batch 1
// and 32, intra-op threads as given, sequential execution, all graph optimisations on.
//     node onnxruntime_bench.js NODE_MODULES THREADS ROUNDS FILE.onnx...
// With RLA_ORT_JSONL=FILE set, one JSON object per model and batch is appended there too.
'use strict';
const path = require('path');

async function medianMs(run, rounds) {
  await run();  // warm-up
  const samples = [];
  for (let r = 0; r < rounds; ++r) {
    let calls = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    do {
      await run();
      ++calls;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    } while (elapsed < 0.3);
    samples.push(1e3 * elapsed / calls);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

async function main() {
  const [modules, threads, rounds, ...files] = process.argv.slice(2);
  const ort = require(path.join(modules, 'onnxruntime-node'));
  for (const file of files) {
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all'});
    const name = path.basename(file, '.onnx');
    const shape = name.includes('resnet20') ? [1, 28, 28] : [3, 224, 224];
    for (const batch of [1, 32]) {
      const size = batch * shape.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({length: size}, () => Math.random() * 2 - 1);
      const feeds = {input: new ort.Tensor('float32', data, [batch, ...shape])};
      const ms = await medianMs(() => session.run(feeds), Number(rounds));
      console.log(`${name.padEnd(14)} [${shape}] batch ${String(batch).padStart(2)}: ONNX Runtime ` +
                  `${ort.env.versions.common} ${ms.toFixed(2).padStart(8)} ms`);
      if (process.env.RLA_ORT_JSONL)
        require('fs').appendFileSync(process.env.RLA_ORT_JSONL, JSON.stringify(
            {model: name, batch, ort_ms: ms, version: ort.env.versions.common}) + '\n');
    }
  }
}

main().catch((e) => {
  console.error('onnxruntime_bench.js: ' + (e.message || e));
  process.exit(1);
});
