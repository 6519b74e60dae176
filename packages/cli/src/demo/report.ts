/**
 * The demo's report: one self-contained HTML file (no script, no external resource; it opens offline
 * and prints): the before/after table with 95% intervals, the PAVRM's accuracy per sigma bucket, the
 * PAVRM and PRFL curves as inline SVG, the time per stage, and the same prompts and seeds before and
 * after as animated GIFs side by side.
 */
import type { Video } from '@prfl/datasets';
import type { Rate } from '@prfl/pretrained';
import { encodeGif } from '../gif.js';
import type { DemoFrames, DemoResult } from './pipeline.js';

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const auc = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const rate = (r: Rate) => `${pct(r.rate)} <span class="ci">[${pct(r.low)}, ${pct(r.high)}]</span> (n ${r.n})`;

function gif(video: Video): string {
  const bytes = encodeGif([video], { fps: 8, scale: 3 });
  return `data:image/gif;base64,${Buffer.from(bytes).toString('base64')}`;
}

/** A line plot of one or two series over steps, as inline SVG. */
export function linePlot(
  title: string,
  points: readonly { step: number; [k: string]: number }[],
  series: readonly { key: string; colour: string }[],
): string {
  const w = 420;
  const h = 180;
  const pad = 34;
  if (points.length === 0)
    return `<figure><figcaption>${esc(title)}: no steps ran in this run</figcaption></figure>`;
  const xs = points.map((p) => p.step);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const values = series.flatMap((s) => points.map((p) => p[s.key] as number)).filter(Number.isFinite);
  const y0 = Math.min(...values);
  const y1 = Math.max(...values, y0 + 1e-9);
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0)) * (w - 2 * pad);
  const sy = (y: number) => h - pad + ((y0 - y) / (y1 - y0)) * (h - 2 * pad);
  const lines = series
    .map((s) => {
      const pts = points
        .filter((p) => Number.isFinite(p[s.key] as number))
        .map((p) => `${sx(p.step).toFixed(1)},${sy(p[s.key] as number).toFixed(1)}`)
        .join(' ');
      return `<polyline fill="none" stroke="${s.colour}" stroke-width="1.5" points="${pts}"/>`;
    })
    .join('');
  const legend = series
    .map((s, i) => `<text x="${pad + 110 * i}" y="14" fill="${s.colour}" font-size="12">${esc(s.key)}</text>`)
    .join('');
  return `<figure><svg class="plot" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">
<rect x="${pad}" y="${pad}" width="${w - 2 * pad}" height="${h - 2 * pad}" fill="none" stroke="#bbb"/>
${lines}${legend}
<text x="${pad}" y="${h - 8}" font-size="11">step ${x0}</text><text x="${w - pad}" y="${h - 8}" font-size="11" text-anchor="end">${x1}</text>
<text x="4" y="${pad + 4}" font-size="11">${y1.toPrecision(3)}</text><text x="4" y="${h - pad}" font-size="11">${y0.toPrecision(3)}</text>
</svg><figcaption>${esc(title)}</figcaption></figure>`;
}

function verdict(v: { motionGood: number; adherent: number }): string {
  return `${v.motionGood ? '<b class="good">motion good</b>' : '<b class="bad">motion bad</b>'}, ${v.adherent ? 'follows the prompt' : 'off-prompt'}`;
}

/** The report's HTML. */
export function renderReport(r: DemoResult, frames: DemoFrames): string {
  const s = r.settings;
  const buckets = r.reward.buckets
    .map(
      (b) =>
        `<tr><td>(${b.low.toFixed(1)}, ${b.high.toFixed(1)}]</td><td>${pct(b.accuracy)}</td><td>${auc(b.rocAuc)}</td><td>${auc(b.withinPromptAuc)}</td><td>${b.n}</td></tr>`,
    )
    .join('');
  const samples = r.samples
    .map(
      (x, i) => `<div class="pair"><p>${esc(x.prompt)} <span class="ci">seed ${esc(x.seed)}</span></p>
<figure><img alt="before: ${esc(x.prompt)}" src="${gif(frames.before[i] as Video)}"><figcaption>before: ${verdict(x.before)}</figcaption></figure>
<figure><img alt="after: ${esc(x.prompt)}" src="${gif(frames.after[i] as Video)}"><figcaption>after PRFL: ${verdict(x.after)}</figcaption></figure></div>`,
    )
    .join('\n');
  const times = Object.entries(r.seconds)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.toFixed(1)} s</td></tr>`)
    .join('');
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prfl demo: PRFL on MovingShapes</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.ci{color:#777;font-size:.85em}.good{color:#1a7f37}.bad{color:#b42318}
.pair{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap;border-top:1px solid #eee;padding:.5em 0}
.pair p{flex-basis:100%;margin:.2em 0}figure{margin:0}img{image-rendering:pixelated;border:1px solid #ccc}
.plots{display:flex;gap:1em;flex-wrap:wrap}
</style></head><body>
<h1>PRFL on MovingShapes</h1>
<p>The embedded generator made videos for the training prompts; the oracle labelled their motion; a PAVRM
learned those labels from noisy latents; the generator was fine-tuned with PRFL against it, and judged by
the oracle on ${s.evalVideos} videos of held-out prompts and seeds, before and after (backend ${esc(r.backend)}).</p>
<h2>Before and after (oracle, held-out prompts and seeds)</h2>
<table id="before-after"><tr><th></th><th>before</th><th>after PRFL</th><th>change</th></tr>
<tr><td>motion good</td><td>${rate(r.before.motionGood)}</td><td>${rate(r.after.motionGood)}</td><td>${sign(r.delta.motionGood)} points</td></tr>
<tr><td>follows the prompt</td><td>${rate(r.before.adherence)}</td><td>${rate(r.after.adherence)}</td><td>${sign(r.delta.adherence)} points</td></tr>
</table>
${
  r.control === undefined
    ? ''
    : `<p>Control: the base generator fine-tuned by PRFL's SFT term alone (no reward; the same clips, steps, batch
and learning rate), judged on the same videos. What PRFL gains beyond it is what the latent reward adds.</p>
<table id="control"><tr><th></th><th>before</th><th>SFT term alone</th><th>change</th><th>PRFL's change</th></tr>
<tr><td>motion good</td><td>${rate(r.before.motionGood)}</td><td>${rate(r.control.after.motionGood)}</td><td>${sign(r.control.delta.motionGood)} points</td><td>${sign(r.delta.motionGood)} points</td></tr>
<tr><td>follows the prompt</td><td>${rate(r.before.adherence)}</td><td>${rate(r.control.after.adherence)}</td><td>${sign(r.control.delta.adherence)} points</td><td>${sign(r.delta.adherence)} points</td></tr>
</table>`
}
<h2>The latent reward (PAVRM)</h2>
<p>Trained on ${r.reward.trainVideos} videos (${pct(r.reward.trainMotionGoodRate)} with good motion). Accuracy on
the held-out videos of the base generator, one random noise level per bucket per video; average ${pct(r.reward.average)},
ROC-AUC ${auc(r.reward.averageRocAuc)}. ${pct(r.reward.heldOutGoodRate)} of those videos are good, so always answering
the more common label scores ${pct(Math.max(r.reward.heldOutGoodRate, 1 - r.reward.heldOutGoodRate))}: ROC-AUC (0.5 is chance)
says how well the reward ranks good above bad. A reward can rank well by knowing which prompts tend to come
out well; the ROC-AUC within a prompt (over pairs of a good and a bad video of the same prompt:
${auc(r.reward.averageWithinPromptAuc)} on average) counts only what it reads from the video itself.</p>
<table id="buckets"><tr><th>sigma</th><th>accuracy</th><th>ROC-AUC</th><th>within a prompt</th><th>videos</th></tr>${buckets}</table>
<h2>Curves</h2>
<div class="plots">
${linePlot('PAVRM training: loss and batch accuracy', r.curves.pavrm, [
  { key: 'loss', colour: '#b42318' },
  { key: 'accuracy', colour: '#1a7f37' },
])}
${linePlot('PRFL: loss and reward of x_{k+1}', r.curves.prfl, [
  { key: 'loss', colour: '#b42318' },
  { key: 'reward', colour: '#175cd3' },
])}
</div>
<h2>The same prompts and seeds</h2>
${samples}
<h2>Time per stage</h2>
<table id="times">${times}</table>
<p class="ci">Settings: ${esc(JSON.stringify(s))}</p>
</body></html>
`;
}
