// A PRFL training process for test/resume-sigkill.test.ts, on the *built* packages in plain Node (the
// way a user runs training): the tiny WanDiT fine-tuned against PAVRM on a frozen copy of its first two
// blocks, cpu backend, a checkpoint every 4 micro-steps into <dir>. With --resume it continues from the
// checkpoint in <dir>. Prints `step <n>` after every micro-step (before that step's checkpoint is
// written), `checkpoint <n>` after every checkpoint, and `done <n>` at the end.
//
//   node test/support/resume-child.mjs <dir> <max steps> [--resume]
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend } from '@prfl/tensor';
import { WanDiT } from '@prfl/models';
import { Pavrm } from '@prfl/reward';
import { PrflTrainer, tensorVideoSource } from '@prfl/refl';

const [dir, maxStepsText, flag] = process.argv.slice(2);
const maxSteps = Number(maxStepsText);
if (!dir || !Number.isInteger(maxSteps) || maxSteps < 1) {
  throw new Error(
    `usage: resume-child.mjs <dir> <max steps> [--resume]; got dir ${JSON.stringify(dir)}, max steps ${JSON.stringify(maxStepsText)}`,
  );
}
await initBackend({ backend: 'cpu' });

// Every model is rebuilt from its seed in every process; the reward is a copy of the *initial*
// generator's blocks, taken before a checkpoint overwrites the generator's weights.
const generator = new WanDiT('tiny', { seed: 1 });
const head = generator.namedVariables().get('head.head.weight');
head.assign(tf.tidy(() => new Generator('head').normal(head.shape, 0, 0.02)));
const reward = new Pavrm(generator.truncate(2), { hidden: [16, 8], seed: 3 });
const data = new Generator('data');
const source = tensorVideoSource({
  latents: data.normal([6, 2, 4, 4, 16]),
  conditioning: { text: data.normal([6, 4, 32]) },
});
const components = { generator, reward, nullConditioning: { text: tf.zeros([1, 4, 32]) } };
const options = {
  // A short schedule keeps a step at a few hundred ms on cpu; a 3-step window makes the checkpoints
  // every 4 steps fall mid-window; the text dropout draws exercise the random streams.
  numSteps: 8,
  accumulationSteps: 3,
  lr: 1e-3,
  seed: 5,
  measureMemory: false,
  onStep: (m) => process.stdout.write(`step ${m.step}\n`),
  onCheckpoint: (state) => process.stdout.write(`checkpoint ${state.step}\n`),
};
const trainer =
  flag === '--resume'
    ? await PrflTrainer.resume(dir, components, options)
    : new PrflTrainer(components, options);
if (flag === '--resume') process.stdout.write(`resumed ${trainer.position.step}\n`);
const result = await trainer.fit(source, {
  epochs: 100,
  batchSize: 2,
  maxSteps,
  checkpointDir: dir,
  checkpointEvery: 4,
});
process.stdout.write(`done ${result.step}\n`);
