#!/usr/bin/env node
// Runs ONNX files written by `rla export --format onnx` in ONNX Runtime (the onnxruntime-node
// package, a test reference only: scripts/install-onnxruntime.sh puts it in a cache folder).
//
//     node check_onnx.js DIR NODE_MODULES
//
// For every DIR/<name>.onnx the C++ test wrote <name>.input.bin and <name>.logits.bin (raw
// float32) and <name>.shapes (their dims, one line each). A model with several outputs (a
// backbone) has <name>.outputs (their names, one per line) and <name>.<output>.bin for each, their
// shapes following the input's. ONNX Runtime must reproduce every output within 1e-4 (max abs
// difference, scaled by the largest value when that exceeds 1). Prints one line per output;
// exits 1 when any fails.
'use strict';
const fs = require('fs');
const path = require('path');

const TOLERANCE = 1e-4;

function readFloats(file) {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

async function main() {
  const [dir, modules] = process.argv.slice(2);
  const ort = require(path.join(modules, 'onnxruntime-node'));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  if (files.length === 0) throw new Error('no .onnx files in ' + dir);
  let failed = 0;
  for (const file of files) {
    const name = file.slice(0, -'.onnx'.length);
    const shapes = fs.readFileSync(path.join(dir, name + '.shapes'), 'utf8').trim().split('\n')
        .map((line) => line.trim().split(/\s+/).map(Number));
    const x = readFloats(path.join(dir, name + '.input.bin'));
    const namesFile = path.join(dir, name + '.outputs');
    const outputs = fs.existsSync(namesFile) ? fs.readFileSync(namesFile, 'utf8').trim().split('\n') : ['logits'];
    try {
      const session = await ort.InferenceSession.create(path.join(dir, file), {intraOpNumThreads: 1});
      const out = await session.run({input: new ort.Tensor('float32', x, shapes[0])});
      outputs.forEach((output, k) => {
        const want = readFloats(path.join(dir, name + '.' + output + '.bin'));
        const got = out[output];
        const dims = shapes[k + 1];
        const sameShape = got !== undefined && got.dims.length === dims.length && got.dims.every((d, i) => d === dims[i]);
        let diff = sameShape ? 0 : Infinity;
        if (sameShape) for (let i = 0; i < want.length; ++i) diff = Math.max(diff, Math.abs(got.data[i] - want[i]));
        const largest = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const ok = diff <= TOLERANCE * Math.max(1, largest);
        console.log(`${name} ${output}: ONNX Runtime ${ort.env.versions ? ort.env.versions.common : ''} max abs ` +
                    `difference ${diff.toExponential(2)} (values up to ${largest.toFixed(2)}) ${ok ? 'ok' : 'TOO LARGE'}`);
        failed += ok ? 0 : 1;
      });
    } catch (e) {
      console.log(`${name}: ONNX Runtime FAILED: ${String(e.message || e).split('\n')[0].slice(0, 200)}`);
      failed += 1;
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log('check_onnx.js: ' + (e.message || e));
  process.exit(1);
});
