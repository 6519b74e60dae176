// The VAE decoder's throughput, the baseline's own cost: forward (no tape) and forward + backward (the
// gradient with respect to the latent only, as RGB ReFL needs it: the decoder is frozen) of the
// setting's decoder on the first latent frame or on all of them, timed after a warm-up, with the
// conv3d FLOPs of lib/vae-flops.mjs.
//
//   node bench/cells/decoder.mjs '{"setting":"mid","frames":17,"which":"first","passes":["forward","forwardBackward"],"warmup":1,"repeats":2}'
import * as tf from '@tensorflow/tfjs-core';
import { Generator, measureMemory } from '@prfl/tensor';
import { log, median, runCell } from '../lib/cell.mjs';
import { decoderFlops } from '../lib/vae-flops.mjs';
import { buildDecoder, settingLatent } from '../lib/world.mjs';

await runCell(async (spec) => {
  const vae = buildDecoder(spec.setting);
  const [f, h, w, c] = settingLatent(spec.setting, spec.frames);
  const latentFrames = spec.which === 'first' ? 1 : f;
  const z = new Generator('bench/decoder').normal([1, latentFrames, h, w, c]);
  const flops = decoderFlops(vae.config, [latentFrames, h, w]);
  const passes = {
    forward: () => vae.decode(z),
    // What RGB ReFL's backward does in the decoder: d(loss)/d(latent) through every layer, no filter
    // gradients (@prfl/tensor's conv3d computes only the gradients on the tape's path).
    forwardBackward: () => tf.grad((x) => tf.mean(tf.square(vae.decode(x))))(z),
  };
  const out = {
    setting: spec.setting,
    which: spec.which,
    latent: [latentFrames, h, w, c],
    outputFrames: flops.frames,
    parameters: vae.parameterCount(),
    gflopForward: +(flops.conv3d / 1e9).toFixed(3),
    // Forward + input gradients: each convolution's input gradient is a convolution of equal size.
    gflopForwardBackward: +((2 * flops.conv3d) / 1e9).toFixed(3),
    gflopOnCausalZeroFrames: +(flops.conv3dOnZeros / 1e9).toFixed(3),
    gflopNotCounted: {
      pointwise: +(flops.pointwise / 1e9).toFixed(4),
      attention: +(flops.attention / 1e9).toFixed(4),
    },
  };
  for (const pass of spec.passes) {
    const times = [];
    let peak = null;
    for (let i = 0; i < spec.warmup + spec.repeats; i++) {
      const t0 = performance.now();
      const m = measureMemory(() => {
        const y = passes[pass]();
        y.dataSync();
        y.dispose();
      });
      const ms = performance.now() - t0;
      if (i >= spec.warmup) times.push(ms);
      peak = Math.max(peak ?? 0, m.peakBufferBytes);
      log(
        `  decoder ${spec.setting} ${spec.which} ${pass} ${i + 1}/${spec.warmup + spec.repeats}: ${ms.toFixed(0)} ms`,
      );
    }
    const gflop = pass === 'forward' ? out.gflopForward : out.gflopForwardBackward;
    out[pass] = {
      ms: +median(times).toFixed(1),
      bestMs: +Math.min(...times).toFixed(1),
      reps: times.length,
      gflops: +(gflop / (median(times) / 1000)).toFixed(2),
      gflopsBest: +(gflop / (Math.min(...times) / 1000)).toFixed(2),
      peakBufferBytes: peak,
    };
  }
  z.dispose();
  vae.dispose();
  return out;
});
