// How far the MovingShapes oracle can be trusted: per rendering, the false-alarm rate on good motion
// and the recall of each motion defect, on 500 clips per cell (17 frames of 64 x 64). Renderings: ours
// (clean, and degraded by blur 1 px, noise 0.1, colour shift 0.05) and a second, independent renderer
// written in the tests (test/support/second-renderer: hard edges, 4 x 4 supersampled edges, radii
// between the named sizes, blur 0.5-1.5 px, noise 0.02-0.05, and all of it at once as a VAE-like finish),
// each with its own paths and its own injected defects. Seeds "bench-trust/..." (the thresholds were set
// on other seeds; the tests use "test-second/...").
//
// The second renderer is TypeScript under test/, so this script first bundles test/support/oracle-table.ts
// (and the sources it imports, resolved as the tests resolve them) with esbuild into a temporary folder,
// removed at the end; no build of the package is needed.
//
//   node bench/oracle-agreement.mjs [--clips 500] [--frames 17]
//
// Writes bench/results/oracle-agreement.json with the command that made it, and prints the table of
// docs/datasets.md ("How far the oracle can be trusted").
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const COUNT = option('clips', 500);
const FRAMES = option('frames', 17);
const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, '..');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'prfl-oracle-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const bundle = path.join(tmp, 'oracle-table.cjs');
await build({
  entryPoints: [path.join(root, 'test', 'support', 'oracle-table.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outfile: bundle,
  conditions: ['@prfl/source'],
  logLevel: 'error',
});
const { measureCell, RENDERING_NOTES, TABLE_DEFECTS, TABLE_RENDERINGS } = createRequire(import.meta.url)(
  bundle,
);

/** Wilson score interval (95 %) of k successes in n trials. */
function wilson(k, n) {
  const z = 1.96;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)].map((v) => Math.round(v * 1000) / 1000);
}
const pct = (k, n) => `${((100 * k) / n).toFixed(1)} %`;

const results = {
  command: `node bench/oracle-agreement.mjs${args.length ? ` ${args.join(' ')}` : ''}`,
  date: new Date().toISOString(),
  node: process.version,
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model ?? 'unknown',
    platform: `${os.platform()} ${os.arch()}`,
  },
  clipsPerCell: COUNT,
  frames: `${FRAMES} x 64 x 64 RGB`,
  seeds: 'bench-trust/<rendering>/<i>',
  decision:
    'motion quality label 0 (physics AND integrity); good clips flagged are false alarms, defective clips flagged are detections',
  renderings: {},
};

const start = performance.now();
for (const rendering of TABLE_RENDERINGS) {
  const row = { what: RENDERING_NOTES[rendering], cells: {} };
  for (const defect of TABLE_DEFECTS) {
    const t = performance.now();
    const cell = measureCell({
      rendering,
      defect,
      count: COUNT,
      seed: `bench-trust/${rendering}`,
      frames: FRAMES,
    });
    row.cells[defect] = {
      clips: cell.count,
      flagged: cell.flagged,
      rate: Math.round((cell.flagged / cell.count) * 10000) / 10000,
      wilson95: wilson(cell.flagged, cell.count),
      reasons: cell.reasons,
      examples: cell.examples,
      seconds: Math.round((performance.now() - t) / 100) / 10,
    };
  }
  const good = row.cells.none;
  row.falseAlarmRate = good.rate;
  row.recall = Object.fromEntries(
    TABLE_DEFECTS.filter((d) => d !== 'none').map((d) => [d, row.cells[d].rate]),
  );
  results.renderings[rendering] = row;
  console.log(
    `${rendering.padEnd(15)} false alarms ${pct(good.flagged, good.clips)}; recall ${Object.entries(
      row.recall,
    )
      .map(([d, r]) => `${d} ${(100 * r).toFixed(1)} %`)
      .join(', ')}`,
  );
}
results.seconds = Math.round((performance.now() - start) / 100) / 10;

// The table of docs/datasets.md.
const defects = TABLE_DEFECTS.filter((d) => d !== 'none');
const lines = [
  `| rendering | false alarms on good motion | ${defects.join(' | ')} |`,
  `|---|---|${defects.map(() => '---').join('|')}|`,
];
for (const [name, row] of Object.entries(results.renderings)) {
  const good = row.cells.none;
  lines.push(
    `| ${name} | ${pct(good.flagged, good.clips)} (${good.flagged} / ${good.clips}) | ${defects
      .map((d) => pct(row.cells[d].flagged, row.cells[d].clips))
      .join(' | ')} |`,
  );
}
results.markdown = lines.join('\n');
console.log(`\n${results.markdown}\n`);

mkdirSync(path.join(here, 'results'), { recursive: true });
const out = path.join(here, 'results', 'oracle-agreement.json');
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${out} (${results.seconds} s)`);
