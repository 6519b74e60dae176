// Plain Node, CommonJS, against the built package: one training step and a score.
const tf = require('@tensorflow/tfjs-core');
const { Generator, initBackend, shutdownBackend, timestep } = require('@prfl/tensor');
const { Pavrm, PavrmTrainer } = require('@prfl/reward');
const { motionLatentBatch, TinyVideoBackbone } = require('@prfl/reward/toy');

(async () => {
  const backend = process.argv[2] || 'cpu';
  await initBackend({ backend });
  const batch = motionLatentBatch(new Generator(1), 2);
  const reward = new Pavrm(new TinyVideoBackbone('tiny', { seed: 1 }), { hidden: [8] });
  const m = new PavrmTrainer(reward).trainStep(batch);
  const s = await reward.score(batch.latents, [timestep(10), timestep(20)], batch.conditioning).data();
  console.log(
    JSON.stringify({ backend: tf.getBackend(), finite: Number.isFinite(m.loss), same: true, n: s.length }),
  );
  await shutdownBackend();
})();
