// A sampler of your own in prfl's pipeline: a flow-matching Euler scheduler written here against
// @prfl/tensor's `Scheduler` interface, and a model wrapper written against its `VelocityModel`
// interface, plugged into @prfl/models' `WanPipeline` and `sampleLatents` with the embedded models of
// @prfl/pretrained (a small Wan DiT, its VAE and text encoder), the videos scored part-way and at the end
// by the shipped PAVRM and judged by the MovingShapes oracle.
//
//   node index.mjs [wasm|cpu]
//
// The exit code is 1 if a check fails: the hand-written Euler must reproduce @prfl/schedulers'
// FlowMatchEulerScheduler (same schedule, same latents from the same noise), the model must have been
// called once per step on the guided batch, and the reward must give a probability for every video.
import * as tf from '@tensorflow/tfjs-core';
import { Generator, InvalidArgumentError, initBackend } from '@prfl/tensor';
import { FlowMatchEulerScheduler } from '@prfl/schedulers';
import { sampleLatents, WanPipeline } from '@prfl/models';
import { judgeVideo } from '@prfl/datasets';
import { disposeEmbedded, loadEmbedded, tensorToVideo } from '@prfl/pretrained';

const backend = process.argv[2] ?? 'wasm';
const started = performance.now();
await initBackend({ backend });

const failures = [];
function check(ok, what) {
  console.log(`  check: ${what}: ${ok ? 'ok' : 'FAILED'}`);
  if (!ok) failures.push(what);
}

// ---------------------------------------------------------------------------------------------------
// 1. A scheduler of one's own. The contract (`Scheduler` in @prfl/tensor's types): a schedule of N
//    timesteps (what the model reads) and N + 1 sigmas (noise levels, the last 0); an explicit solver state;
//    a pure `step` from sigmas[index] to sigmas[index + 1] built from tf ops (so it can run under a
//    gradient tape); the clean estimate; forward noising; a config. This is rectified-flow Euler on the
//    PRFL reference's grid: sigmas = shift(linspace(1, 0, N + 1)), x_next = x + (sigma_next - sigma) v.
class MyEulerScheduler {
  name = 'MyEulerScheduler';
  numTrainTimesteps = 1000;

  constructor({ shift = 1 } = {}) {
    if (!(shift > 0)) throw new InvalidArgumentError(`MyEulerScheduler: shift must be > 0, got ${shift}`);
    this.shift = shift;
  }

  schedule(numSteps, { shift = this.shift } = {}) {
    if (!Number.isInteger(numSteps) || numSteps < 1) {
      throw new InvalidArgumentError(
        `MyEulerScheduler.schedule: numSteps must be a positive integer, got ${numSteps}`,
      );
    }
    const step = -1 / numSteps;
    const sigmas = Array.from({ length: numSteps + 1 }, (_, i) => {
      const s = i === numSteps ? 0 : 1 + i * step; // linspace(1, 0, N + 1), the last point exactly 0
      return Math.fround((shift * s) / (1 + (shift - 1) * s)); // float32, as the references keep them
    });
    const timesteps = sigmas.slice(0, numSteps).map((s) => Math.trunc(s * this.numTrainTimesteps));
    return Object.freeze({ numSteps, sigmas, timesteps });
  }

  // Euler keeps no history: the state only says which step comes next, so steps cannot be skipped.
  initialState(_schedule) {
    return { next: 0 };
  }

  step({ schedule, state, index, sample, modelOutput }) {
    if (index !== state.next) {
      throw new InvalidArgumentError(`MyEulerScheduler.step: expected step ${state.next}, got ${index}`);
    }
    const delta = schedule.sigmas[index + 1] - schedule.sigmas[index];
    return { sample: tf.tidy(() => tf.add(sample, tf.mul(modelOutput, delta))), state: { next: index + 1 } };
  }

  predictOriginal({ schedule, index, sample, modelOutput }) {
    return tf.tidy(() => tf.sub(sample, tf.mul(modelOutput, schedule.sigmas[index])));
  }

  addNoise(x0, noise, sigmas) {
    const list = Array.isArray(sigmas) ? sigmas : new Array(x0.shape[0]).fill(sigmas);
    return tf.tidy(() => {
      const s = tf.reshape(tf.tensor1d(list), [-1, ...new Array(x0.rank - 1).fill(1)]);
      return tf.add(tf.mul(tf.sub(1, s), x0), tf.mul(s, noise));
    });
  }

  disposeState(_state) {}

  toConfig() {
    return { _class_name: this.name, num_train_timesteps: this.numTrainTimesteps, shift: this.shift };
  }
}

// 2. A model of one's own. `VelocityModel` asks for `latentChannels`, `namedVariables()` and
//    `predictVelocity(x, timesteps, conditioning)`. This one wraps another model and counts what it is
//    asked: a place for caching, logging, or a different model altogether.
class CountingModel {
  calls = 0;
  rows = 0;

  constructor(inner) {
    this.inner = inner;
    this.latentChannels = inner.latentChannels;
  }

  namedVariables() {
    return this.inner.namedVariables();
  }

  predictVelocity(x, timesteps, conditioning, options) {
    this.calls += 1;
    this.rows += x.shape[0];
    return this.inner.predictVelocity(x, timesteps, conditioning, options);
  }
}

// ---------------------------------------------------------------------------------------------------
// The embedded models: VAE, text encoder, Wan DiT and the PAVRM on the DiT's first two blocks.
const models = await loadEmbedded();
const { dit, vae, textEncoder, reward } = models;
console.log(
  `embedded models loaded: DiT ${dit.config.dim} wide, ${dit.config.numLayers} blocks; PAVRM on its first ${models.manifest.rewardBlocks}`,
);
// Four training prompts of the embedded world (docs/pretrained.md).
const prompts = [
  'a large red square moving up',
  'a large blue circle moving right',
  'a large green triangle moving left',
  'a large yellow circle moving down',
];
const numSteps = 20;
const guidanceScale = 4;
const latentShape = vae.latentShape(17, 64, 64); // [F', H', W', C]: 17 x 64 x 64 RGB -> [5, 8, 8, 16]

// 3. Does the hand-written Euler reproduce the library's? Same schedule, and the same latents from the
//    same noise through the same loop (`sampleLatents`: guided velocity, then scheduler.step).
const mine = new MyEulerScheduler({ shift: 5 });
const library = new FlowMatchEulerScheduler({ shift: 5 });
const mySchedule = mine.schedule(numSteps);
const libSchedule = library.schedule(numSteps);
console.log(`\ntimesteps: ${mySchedule.timesteps.join(', ')}`);
check(
  mySchedule.sigmas.every((s, i) => s === libSchedule.sigmas[i]) &&
    mySchedule.timesteps.every((t, i) => t === libSchedule.timesteps[i]),
  "the schedule equals FlowMatchEulerScheduler's, value for value",
);
const { text, mask } = textEncoder.encode(prompts);
const { text: empty, mask: emptyMask } = textEncoder.encode(prompts.map(() => ''));
tf.dispose([mask, emptyMask]); // Wan's DiT reads the zero-padded text without a mask
// Seeded noise from @prfl/tensor's Generator: the same numbers on every backend.
const noise = new Generator('custom-pipeline').normal([prompts.length, ...latentShape]);
const sample = (scheduler, schedule) =>
  sampleLatents({
    model: dit,
    scheduler,
    schedule,
    initial: noise,
    conditioning: { text },
    negative: { text: empty },
    guidanceScale,
  });
const ours = (await sample(mine, mySchedule)).latents;
const theirs = (await sample(library, libSchedule)).latents;
const diff = tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0];
// The same arithmetic in the same order: the latents must agree bit for bit.
check(
  diff === 0,
  `latents after ${numSteps} guided steps: largest difference ${diff.toExponential(1)} (exactly 0)`,
);
tf.dispose([ours, theirs, noise]);

// 4. The pipeline with both: prompts -> text -> seeded noise -> guided sampling with MyEulerScheduler ->
//    decoded frames. The PAVRM reads noisy latents, so it scores each video half-way (as a pruning step
//    would) and at the end; the oracle judges the decoded frames.
const model = new CountingModel(dit);
const pipeline = new WanPipeline({ model, textEncoder, vae, scheduler: mine });
const halfway = [];
const out = await pipeline.generate({
  prompt: prompts,
  latentShape: [latentShape[0], latentShape[1], latentShape[2]],
  numSteps,
  guidanceScale,
  seed: 3,
  onProgress: async ({ step, timestep, latent }) => {
    if (step === numSteps / 2) {
      const p = reward.probability(latent, timestep, { text });
      halfway.push(...(await p.data()));
      p.dispose();
    }
  },
});
const finalP = reward.probability(out.latents, 0, { text });
const final = Array.from(await finalP.data());
finalP.dispose();

console.log('\nvideo  prompt                                p(good) half-way  p(good) at the end  oracle');
for (let i = 0; i < prompts.length; i++) {
  const one = tf.slice(out.frames, [i, 0, 0, 0, 0], [1, -1, -1, -1, -1]);
  const report = judgeVideo(await tensorToVideo(one), prompts[i]);
  one.dispose();
  const a = report.promptAdherence;
  const verdict = `motion ${report.motionQuality.label ? 'good' : 'bad'}, ${a.colour.ok && a.shape.ok && a.motion.ok ? 'as prompted' : 'not as prompted'}`;
  console.log(
    `${String(i).padStart(5)}  ${prompts[i].padEnd(36)}  ${halfway[i].toFixed(3).padStart(16)}  ${final[i].toFixed(3).padStart(18)}  ${verdict}`,
  );
}
console.log(
  `frames [${out.frames.shape.join(', ')}]; the model was called ${model.calls} times on ${model.rows} rows`,
);
check(
  model.calls === numSteps && model.rows === numSteps * 2 * prompts.length,
  `one model call per step on the conditional and unconditional halves (${numSteps} calls, ${numSteps * 2 * prompts.length} rows)`,
);
const probabilities = [...halfway, ...final];
check(
  probabilities.length === 2 * prompts.length && probabilities.every((p) => p > 0 && p < 1),
  'a reward probability in (0, 1) for every video, half-way and at the end',
);
tf.dispose([out.latents, out.frames, text, empty]);
disposeEmbedded(models);

if (failures.length > 0) {
  console.error(`\n${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
console.log(`\ndone on ${backend} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
