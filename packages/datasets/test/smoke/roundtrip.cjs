// The built package in plain Node (CommonJS). Usage: node roundtrip.cjs <cpu|wasm>; prints one JSON line.
const { judgeVideo, renderClip, sampleClip, stackLatents } = require('@prfl/datasets');
const { initBackend } = require('@prfl/tensor');
const tf = require('@tensorflow/tfjs-core');

(async () => {
  const backend = process.argv[2];
  await initBackend({ backend });
  const spec = sampleClip({
    seed: 'smoke',
    prompt: { colour: 'red', shape: 'circle', size: 'medium', motion: 'bounce-right' },
  });
  const report = judgeVideo(renderClip(spec), spec.prompt);
  const t = stackLatents([{ shape: [1, 2, 2, 1], data: new Float32Array([1, 2, 3, 4]) }], ['x']);
  const sum = (await tf.sum(t).data())[0];
  t.dispose();
  console.log(JSON.stringify({ backend, adherence: report.promptAdherence.label, sum }));
})();
