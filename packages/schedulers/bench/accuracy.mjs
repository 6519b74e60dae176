// Sampling error against step count, per solver, on an analytic flow with a known exact solution.
//
//   cd packages/schedulers && npx tsup && node bench/accuracy.mjs
//
// Runs on the *built* package (dist/) in plain Node on the cpu backend and writes bench/results/accuracy.json.
//
// The problem: data x0 ~ N(mu, s^2) independently per element (mu, s fixed per element). Its exact
// velocity is known in closed form, and so is the solution of the probability-flow ODE from any start:
//   flow (x = (1 - sigma) x0 + sigma eps):   x(sigma) = (1 - sigma) mu + sqrt((1 - sigma)^2 s^2 + sigma^2) z
//   VP   (x = sqrt(ab) x0 + sqrt(1 - ab) eps): x(ab)    = sqrt(ab) mu + sqrt(ab s^2 + 1 - ab) z
// with z fixed by the starting sample. Each solver integrates from its first noise level with the exact
// model; the error is the RMS distance to the exact solution (a) at fixed fractions 1/2, 3/4, 7/8 of the
// schedule, which sit at the same noise level for every N here, so they show the solver's order, (b) at the
// last noisy level and (c) at the end. The final step of every sampler here jumps straight to the x0
// prediction, which differs from the ODE endpoint by O(sigma_{N-1}^2) whatever the solver, so (c) mixes
// the solver's error with that common one. Errors below about 1e-6 are float32 rounding.
import { writeFileSync, mkdirSync } from 'node:fs';
import { Generator, initBackend, shutdownBackend } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { DDIMScheduler, FlowMatchEulerScheduler, FlowUniPCScheduler } from '../dist/index.js';

const STEP_COUNTS = [8, 16, 32, 64, 128, 256];
// Step indices at these fractions of the schedule sit at the same noise level for every N above.
const FRACTIONS = [0.5, 0.75, 0.875];
const SHAPE = [1, 4, 8, 8, 4]; // a small latent video [B, F, H, W, C]
const SIZE = SHAPE.reduce((a, b) => a * b, 1);
const gen = new Generator('bench/accuracy');
const MU = Array.from(gen.uniformArray(SIZE, -0.8, 0.8));
const SD = Array.from(gen.uniformArray(SIZE, 0.2, 0.9));
const NOISE = Array.from(gen.normalArray(SIZE));

function affine(x, a, b) {
  return tf.tidy(() => tf.add(tf.mul(tf.tensor(a, SHAPE), x), tf.tensor(b, SHAPE)));
}

function flowVelocity(x, sigma) {
  const a = 1 - sigma;
  const c = SD.map((s) => (sigma - a * s * s) / (a * a * s * s + sigma * sigma));
  return affine(
    x,
    c,
    c.map((ck, k) => -ck * a * MU[k] - MU[k]),
  );
}

function vpEpsilon(x, ab) {
  const sa = Math.sqrt(ab);
  const sb = Math.sqrt(1 - ab);
  const a = SD.map((s) => sb / (ab * s * s + 1 - ab));
  return affine(
    x,
    a,
    a.map((ak, k) => -ak * sa * MU[k]),
  );
}

const flowExact = (sigma, z) =>
  MU.map((m, k) => (1 - sigma) * m + Math.hypot((1 - sigma) * SD[k], sigma) * z[k]);
const vpExact = (ab, z) => MU.map((m, k) => Math.sqrt(ab) * m + Math.sqrt(ab * SD[k] ** 2 + 1 - ab) * z[k]);

function rms(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/** One sampling run; returns the errors at the end and at the last noisy level. */
async function run(solver, numSteps) {
  const scheduler = solver.make();
  const schedule = solver.schedule(scheduler, numSteps);
  const level = (i) => solver.level(scheduler, schedule, i);
  // Start from the noise at the first level; z is the ODE's invariant for that start.
  const start = level(0);
  const x0Values = NOISE;
  const z =
    solver.kind === 'flow'
      ? x0Values.map((x, k) => (x - (1 - start) * MU[k]) / Math.hypot((1 - start) * SD[k], start))
      : x0Values.map((x, k) => (x - Math.sqrt(start) * MU[k]) / Math.sqrt(start * SD[k] ** 2 + 1 - start));
  const exact = (i) => (solver.kind === 'flow' ? flowExact(level(i), z) : vpExact(level(i), z));
  let x = tf.tensor(x0Values, SHAPE, 'float32');
  let state = scheduler.initialState(schedule);
  let preFinal = 0;
  const atFraction = {};
  for (let i = 0; i < numSteps; i++) {
    if (i === numSteps - 1) preFinal = rms(await x.data(), exact(i));
    for (const f of FRACTIONS) if (i === f * numSteps) atFraction[f] = rms(await x.data(), exact(i));
    const out = solver.model(scheduler, schedule, i, x);
    const r = scheduler.step({ schedule, state, index: i, sample: x, modelOutput: out });
    out.dispose();
    x.dispose();
    scheduler.disposeState(state);
    x = r.sample;
    state = r.state;
  }
  const final = rms(await x.data(), exact(numSteps));
  x.dispose();
  scheduler.disposeState(state);
  return {
    numSteps,
    finalRmse: final,
    preFinalRmse: preFinal,
    atFraction,
    lastNoisySigma: schedule.sigmas[numSteps - 1],
  };
}

const flowLevel = (_s, schedule, i) => schedule.sigmas[i];
const flowModel = (_s, schedule, i, x) => flowVelocity(x, schedule.sigmas[i]);

const SOLVERS = [
  {
    name: 'Euler (FlowMatchDiscreteScheduler, shift 5)',
    kind: 'flow',
    make: () => new FlowMatchEulerScheduler({ shift: 5 }),
    schedule: (s, n) => s.schedule(n),
    level: flowLevel,
    model: flowModel,
  },
  ...[1, 2, 3].map((order) => ({
    name: `UniPC order ${order} (FlowUniPCMultistepScheduler, bh2, x0, schedule shift 5)`,
    kind: 'flow',
    make: () => new FlowUniPCScheduler({ solver_order: order }),
    schedule: (s, n) => s.schedule(n, { shift: 5 }),
    level: flowLevel,
    model: flowModel,
  })),
  ...[
    [1024, 'T = 1024 (N divides T: the steps stay on the grid)'],
    [1000, 'T = 1000: diffusers steps to t - T // N, off the trailing grid when N does not divide 1000'],
  ].map(([T, note]) => ({
    name: `DDIM eta 0 (DDIMScheduler, epsilon, linear betas, trailing spacing, ${note})`,
    kind: 'vp',
    make: () =>
      new DDIMScheduler({ num_train_timesteps: T, timestep_spacing: 'trailing', clip_sample: false }),
    schedule: (s, n) => s.schedule(n),
    // alpha_bar of the level entering step i (the last entry: the final level, 1).
    level: (_s, schedule, i) =>
      i < schedule.numSteps ? schedule.alphaProd[i] : schedule.alphaProdPrev[i - 1],
    model: (_s, schedule, i, x) => vpEpsilon(x, schedule.alphaProd[i]),
  })),
];

function observedOrders(results, key) {
  const out = [];
  for (let i = 1; i < results.length; i++) {
    const a = results[i - 1];
    const b = results[i];
    out.push(Number((Math.log(a[key] / b[key]) / Math.log(b.numSteps / a.numSteps)).toFixed(2)));
  }
  return out;
}

await initBackend({ backend: 'cpu' });
const solvers = [];
for (const solver of SOLVERS) {
  const results = [];
  for (const n of STEP_COUNTS) results.push(await run(solver, n));
  const entry = {
    solver: solver.name,
    config: solver.make().toConfig(),
    results,
    observedOrder: {
      atThreeQuarters: observedOrders(
        results.map((r) => ({ numSteps: r.numSteps, e: r.atFraction[0.75] })),
        'e',
      ),
      final: observedOrders(results, 'finalRmse'),
    },
  };
  solvers.push(entry);
  console.log(entry.solver);
  for (const r of results) {
    console.log(
      `  N=${String(r.numSteps).padStart(3)}  final ${r.finalRmse.toExponential(3)}  at last noisy sigma ${r.preFinalRmse.toExponential(3)}  ${FRACTIONS.map((f) => `@${f} ${r.atFraction[f].toExponential(3)}`).join(' ')}`,
    );
  }
  console.log(
    `  observed order at 3/4: ${entry.observedOrder.atThreeQuarters}  final: ${entry.observedOrder.final}`,
  );
}
await shutdownBackend();

const report = {
  benchmark: 'sampling error vs step count on an analytic flow',
  command: 'cd packages/schedulers && npx tsup && node bench/accuracy.mjs',
  backend: 'cpu',
  node: process.version,
  problem:
    'x0 ~ N(mu, s^2) per element, mu ~ U(-0.8, 0.8), s ~ U(0.2, 0.9), shape [1, 4, 8, 8, 4]; exact model outputs; error = RMS distance to the exact probability-flow ODE solution from the same start',
  metrics: {
    atFraction:
      'RMS error of the sample entering step f * N, f in {1/2, 3/4, 7/8}: the same noise level for every N, so these show the order of the solver (float32 rounding floor about 1e-6)',
    preFinalRmse:
      'RMS error of the sample entering the final step (the last noisy level, which moves with N)',
    finalRmse:
      'RMS error at the end of sampling (sigma = 0 / alpha_bar = 1); the final step of every sampler jumps to the x0 prediction, an O(sigma_{N-1}^2) error common to all solvers',
    observedOrder: 'log(err(N1) / err(N2)) / log(N2 / N1) between consecutive step counts',
  },
  expectedOrders:
    'Euler 1; UniPC order p with its corrector p + 1 (order 1 -> 2, 2 -> 3, 3 -> 4); DDIM 1. Orders flatten where errors reach float32 rounding.',
  stepCounts: STEP_COUNTS,
  solvers,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/accuracy.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
console.log('wrote bench/results/accuracy.json');
