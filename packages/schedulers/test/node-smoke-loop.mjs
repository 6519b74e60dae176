// The loop both smoke scripts (and test/node-smoke.test.ts, on the sources) run. It takes tf and the
// package's exports as arguments so the same code checks the ESM build, the CJS build and src.
const SHAPE = [1, 2, 2, 2, 2];
const MU = Array.from({ length: 16 }, (_, k) => Math.cos(k) * 0.4);
const SD = Array.from({ length: 16 }, (_, k) => 0.3 + 0.03 * (k % 5));

function velocity(tf, x, sigma) {
  // Exact velocity for data x0 ~ N(mu, sd^2): v = c (x - a mu) - mu, a = 1 - sigma.
  const a = 1 - sigma;
  const c = SD.map((s) => (sigma - a * s * s) / (a * a * s * s + sigma * sigma));
  return tf.tidy(() =>
    tf.sub(tf.mul(tf.tensor(c, SHAPE), tf.sub(x, tf.mul(tf.tensor(MU, SHAPE), a))), tf.tensor(MU, SHAPE)),
  );
}

export async function smokeLoop(tf, { FlowUniPCScheduler, schedulerFromConfig }) {
  const scheduler = schedulerFromConfig(new FlowUniPCScheduler().toConfig());
  const schedule = scheduler.schedule(10, { shift: 5 });
  const before = tf.memory().numTensors;
  let x = tf.tidy(() => tf.reshape(tf.sin(tf.range(0, 16, 1, 'float32')), SHAPE));
  let state = scheduler.initialState(schedule);
  let gradient;
  for (let i = 0; i < schedule.numSteps; i++) {
    const v = velocity(tf, x, schedule.sigmas[i]);
    if (i === 5) {
      const g = tf.grad((vv) =>
        tf.sum(scheduler.step({ schedule, state, index: i, sample: x, modelOutput: vv }).sample),
      );
      const dv = g(v);
      gradient = Array.from(await dv.data());
      dv.dispose();
    }
    const r = scheduler.step({ schedule, state, index: i, sample: x, modelOutput: v });
    v.dispose();
    x.dispose();
    scheduler.disposeState(state);
    x = r.sample;
    state = r.state;
  }
  const sample = Array.from(await x.data());
  x.dispose();
  scheduler.disposeState(state);
  return {
    timesteps: [...schedule.timesteps],
    sample,
    gradient,
    leakedTensors: tf.memory().numTensors - before,
  };
}
