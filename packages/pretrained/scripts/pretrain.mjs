// Makes the embedded default: VAE, text encoder + DiT, PAVRM, then the weights folder (see
// docs/pretrained.md). Every stage checkpoints in the run folder; run the same command again to continue
// an interrupted run. Progress with ETA per stage on stderr; Ctrl-C stops at the next step with a
// checkpoint.
//
//   node scripts/pretrain.mjs [--run-dir DIR] [--out DIR] [--seed 1] [--quick] [--backend wasm]
//
// Defaults: run folder ./runs/pretrain (relative to the current folder), weights into this package's
// weights/ folder.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '@prfl/tensor';
import { pretrain, progressLine } from '@prfl/pretrained/recipe';

const here = import.meta.dirname;
const { values } = parseArgs({
  options: {
    'run-dir': { type: 'string', default: path.resolve('runs', 'pretrain') },
    out: { type: 'string', default: path.join(here, '..', 'weights') },
    seed: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'wasm' },
  },
});
const seed = Number(values.seed);
if (!Number.isSafeInteger(seed)) {
  process.stderr.write(`pretrain: --seed expects an integer, got ${JSON.stringify(values.seed)}\n`);
  process.exit(2);
}

await initBackend({ backend: values.backend });
const controller = new AbortController();
// Ctrl-C, or SIGTERM (what `kill` and job runners send; a background job started by a shell ignores
// SIGINT): stop at the next step, with a checkpoint.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${signal}: stopping at the next step (send it again to quit at once)\n`);
    controller.abort();
  });
}

let last = { stage: '', at: 0 };
const firstDone = new Map();
const started = performance.now();
const result = await pretrain({
  runDir: values['run-dir'],
  out: values.out,
  seed,
  quick: values.quick,
  signal: controller.signal,
  log: (line) => process.stderr.write(`${line}\n`),
  onProgress: (p) => {
    const now = performance.now();
    // The pace of a stage counts from its first report in this process (a resumed stage starts
    // part-way; the generator's clock also runs while it encodes the clips).
    if (!firstDone.has(p.stage)) firstDone.set(p.stage, { done: p.done, at: now });
    const first = firstDone.get(p.stage);
    if (p.stage === last.stage && now - last.at < 3000 && p.done !== p.total) return;
    last = { stage: p.stage, at: now };
    process.stderr.write(
      `${progressLine(p.stage, p.done, p.total, now - first.at, p.metrics ?? {}, first.done)}\n`,
    );
  },
});
process.stderr.write(`done in ${Math.round((performance.now() - started) / 1000)} s: ${result.out}\n`);
