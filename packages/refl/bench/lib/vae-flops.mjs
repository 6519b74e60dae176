// FLOPs of the convolutions of a Wan VAE decoder pass, from its layout: what the decoder's GFLOP/s are
// counted against. Every causal 3-D convolution (decoder.conv1, each residual block's two, the temporal
// upsamplers' time_conv, the per-frame 3x3 resample convolutions, the head) at 2 FLOPs per multiply-add
// on its padded input, so the zero frames of causal padding count: the kernels compute them. The 1x1
// convolutions (conv2, residual shortcuts) and the middle attention are matrix products, listed apart.
// `conv3dOnZeros` is the part of `conv3d` spent on time taps that read only causal zero padding (two of
// a 3-tap kernel's three for a one-frame clip): work a decoder that skipped those taps would save.
import { vaeLayout } from '@prfl/models';

/**
 * @param {import('@prfl/models').WanVAEConfig} config
 * @param {[number, number, number]} latent [F', H', W'] of the decoded latent
 * @returns {{ conv3d: number, conv3dOnZeros: number, pointwise: number, attention: number, convs: number, frames: number }}
 */
export function decoderFlops(config, [frames, height, width]) {
  const dec = vaeLayout(config).decoder;
  let t = frames;
  let h = height;
  let w = width;
  let conv3d = 0;
  let conv3dOnZeros = 0;
  let pointwise = 0;
  let attention = 0;
  let convs = 0;
  // k = kt * kh * kw; a causal kernel (kt = 3) pads two zero frames: output frame i's taps 0..2-i read them.
  const conv = (kt, khw, cin, cout, outFrames = t) => {
    const perTap = 2 * khw * cin * cout * h * w;
    conv3d += kt * outFrames * perTap;
    if (kt === 3) conv3dOnZeros += Math.min(outFrames, 1) * 2 * perTap + Math.min(outFrames - 1, 1) * perTap;
    convs++;
  };
  pointwise += 2 * config.zDim * config.zDim * t * h * w; // conv2
  conv(3, 9, config.zDim, dec.conv1.outDim);
  const run = (m) => {
    switch (m.kind) {
      case 'residual':
        conv(3, 9, m.inDim, m.outDim);
        conv(3, 9, m.outDim, m.outDim);
        if (m.inDim !== m.outDim) pointwise += 2 * m.inDim * m.outDim * t * h * w;
        break;
      case 'attention': {
        // qkv and the projection per position, then the (HW x HW) products per frame.
        const n = h * w;
        attention += t * (2 * n * m.dim * 4 * m.dim + 2 * 2 * n * n * m.dim);
        break;
      }
      case 'upsample':
        if (m.temporal && t > 1) {
          conv(3, 1, m.dim, 2 * m.dim, t - 1);
          t = 1 + 2 * (t - 1);
        }
        h *= 2;
        w *= 2;
        conv(1, 9, m.dim, m.dim / 2);
        break;
      default:
        throw new Error(`decoderFlops: unexpected decoder module kind '${m.kind}'`);
    }
  };
  for (const m of dec.middle) run(m);
  for (const m of dec.blocks) run(m);
  conv(3, 9, dec.headDim, 3);
  return { conv3d, conv3dOnZeros, pointwise, attention, convs, frames: t };
}
