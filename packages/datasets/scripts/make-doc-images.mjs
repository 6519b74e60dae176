// Frame strips of MovingShapes clips for docs/datasets.md (PNG, written with the package's own encoder).
// Usage: npm run build && node scripts/make-doc-images.mjs   (from packages/datasets)
// Every strip shows frames 0, 2, ..., 16 of 17, upscaled 2x; one row per clip, rows listed in the doc.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { degradeVideo, encodePng, frameStrip, judgeVideo, renderClip, sampleClip } from '@prfl/datasets';

const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../docs/images');
mkdirSync(out, { recursive: true });
const frames = [0, 2, 4, 6, 8, 10, 12, 14, 16];
const deflate = (d) => deflateSync(d, { level: 9 });

function save(name, specs, transform = (v) => v) {
  const videos = specs.map((s) => transform(renderClip(s), s));
  writeFileSync(path.join(out, name), encodePng(frameStrip(videos, { frames, scale: 2, gap: 3 }), deflate));
  const lines = specs.map((s, i) => {
    const r = judgeVideo(videos[i], s.prompt);
    const defects = s.defects.map((d) => d.kind).join(', ') || 'none';
    return `  ${i + 1}. "${s.prompt}" | defects: ${defects} | truth MQ ${s.labels.motionQuality} TA ${s.labels.textAlignment} | oracle MQ ${r.motionQuality.label} (${r.motionQuality.score.toFixed(2)}) TA ${r.promptAdherence.label} (${r.promptAdherence.score.toFixed(2)})`;
  });
  console.log(`${name}\n${lines.join('\n')}`);
}

// One good clip per motion family.
const good = [
  { colour: 'red', shape: 'circle', size: 'medium', motion: 'bounce-right' },
  { colour: 'yellow', shape: 'triangle', size: 'large', motion: 'fall' },
  { colour: 'cyan', shape: 'square', size: 'small', motion: 'up-right' },
  { colour: 'magenta', shape: 'cross', size: 'medium', motion: 'orbit-cw' },
  { colour: 'green', shape: 'diamond', size: 'medium', motion: 'walls' },
  { colour: 'orange', shape: 'rectangle', size: 'medium', motion: 'arc-left' },
].map((prompt, i) => sampleClip({ seed: `doc-good-${i}`, prompt }));
save('movingshapes-good.png', good);

// The same clip, clean and with each motion defect.
const base = { colour: 'white', shape: 'circle', size: 'medium', motion: 'right' };
const defects = ['none', 'jitter', 'teleport', 'stall', 'speed-change', 'deformation', 'flicker'];
save(
  'movingshapes-defects.png',
  defects.map((d) => sampleClip({ seed: 'doc-defects-7', prompt: base, motionDefect: d })),
);

// The same prompt, drawn right and with each mismatch.
const said = { colour: 'blue', shape: 'triangle', size: 'large', motion: 'orbit-cw' };
save(
  'movingshapes-mismatch.png',
  ['none', 'wrong-colour', 'wrong-shape', 'wrong-size', 'wrong-motion'].map((a) =>
    sampleClip({ seed: 'doc-mismatch-1', prompt: said, alignmentDefect: a }),
  ),
);

// Clean vs the VAE-like degradation the oracle is tested under.
{
  const pair = sampleClip({
    seed: 'doc-degraded-2',
    prompt: { colour: 'green', shape: 'cross', size: 'small', motion: 'bounce-left' },
  });
  const clean = renderClip(pair);
  const degraded = degradeVideo(clean, { seed: 'doc', blurSigma: 1, noiseStd: 0.1, colourShift: 0.05 });
  writeFileSync(
    path.join(out, 'movingshapes-degraded.png'),
    encodePng(frameStrip([clean, degraded], { frames, scale: 2, gap: 3 }), deflate),
  );
  const a = judgeVideo(clean, pair.prompt);
  const b = judgeVideo(degraded, pair.prompt);
  console.log(
    `movingshapes-degraded.png\n  1. clean "${pair.prompt}": oracle MQ ${a.motionQuality.label} TA ${a.promptAdherence.label}\n  2. degraded: oracle MQ ${b.motionQuality.label} TA ${b.promptAdherence.label}`,
  );
}

// Trails: all 17 frames of a clip in one picture (later frames brighter), one panel per motion defect.
function trail(video) {
  const { frames: F, height: H, width: W, data } = video;
  const n = H * W * 3;
  const out = new Float32Array(n);
  // Background: the per-pixel median over time.
  const column = new Float32Array(F);
  for (let p = 0; p < n; p++) {
    for (let f = 0; f < F; f++) column[f] = data[f * n + p];
    column.sort();
    out[p] = column[F >> 1];
  }
  const bg = out.slice();
  for (let f = 0; f < F; f++) {
    const w = 0.3 + (0.7 * f) / (F - 1);
    for (let q = 0; q < H * W; q++) {
      const p = 3 * q;
      const d = Math.hypot(
        data[f * n + p] - bg[p],
        data[f * n + p + 1] - bg[p + 1],
        data[f * n + p + 2] - bg[p + 2],
      );
      if (d < 0.25) continue;
      for (let c = 0; c < 3; c++) out[p + c] = bg[p + c] + w * (data[f * n + p + c] - bg[p + c]);
    }
  }
  return { frames: 1, height: H, width: W, data: out };
}
{
  const specs = defects.map((d) =>
    sampleClip({
      seed: 'doc-trails-3',
      prompt: { colour: 'yellow', shape: 'circle', size: 'small', motion: 'arc-right' },
      motionDefect: d,
    }),
  );
  const videos = specs.map((s) => trail(renderClip(s)));
  // Side by side: a strip of one-frame "videos" laid out as columns.
  const row = {
    frames: videos.length,
    height: 64,
    width: 64,
    data: new Float32Array(videos.length * 64 * 64 * 3),
  };
  videos.forEach((v, i) => {
    row.data.set(v.data, i * 64 * 64 * 3);
  });
  writeFileSync(
    path.join(out, 'movingshapes-trails.png'),
    encodePng(frameStrip([row], { scale: 3, gap: 3 }), deflate),
  );
  console.log(`movingshapes-trails.png: "${specs[0].prompt}", left to right: ${defects.join(', ')}`);
}
