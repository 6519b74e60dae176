// The built package in plain Node (ESM): render, judge, store and batch a MovingShapes clip on a backend.
// Usage: node roundtrip.mjs <cpu|wasm> <folder>; prints one JSON line.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  disposeBatch,
  judgeVideo,
  openJsonlDataset,
  renderClip,
  sampleClip,
  writeMovingShapesDataset,
} from '@prfl/datasets';
import { initBackend } from '@prfl/tensor';

const [backend, dir] = process.argv.slice(2);
await initBackend({ backend });
mkdirSync(dir, { recursive: true });
const spec = sampleClip({ seed: 'smoke', motionDefect: 'teleport' });
const report = judgeVideo(renderClip(spec), spec.prompt);
const encode = () => ({ shape: [5, 8, 8, 4], data: new Float32Array(5 * 8 * 8 * 4).fill(0.5) });
await writeMovingShapesDataset({
  clips: [spec, sampleClip({ seed: 'smoke2' })],
  encode,
  embedText: () => ({ shape: [3, 8], data: new Float32Array(24) }),
  manifest: path.join(dir, 'm.jsonl'),
  store: path.join(dir, 'store'),
});
const ds = await openJsonlDataset(path.join(dir, 'm.jsonl'), { store: path.join(dir, 'store') });
let shape;
for await (const b of ds.pointwise().batches({ batchSize: 2, seed: 0, epoch: 0 })) {
  shape = b.latents.shape;
  disposeBatch(b);
}
await ds.close();
console.log(
  JSON.stringify({
    backend,
    motionQuality: report.motionQuality.label,
    truth: spec.labels.motionQuality,
    shape,
  }),
);
