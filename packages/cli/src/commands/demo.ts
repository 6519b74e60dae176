/**
 * `prfl demo`: the whole paper on the embedded models (see ../demo/pipeline.ts), with a report.html.
 * `--resume RUN` continues a stopped run in its folder to the same result.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { DEMO_DEFAULTS, DEMO_QUICK, type DemoResult, type DemoSettings, runDemo } from '../demo/pipeline.js';
import { renderReport } from '../demo/report.js';
import { defaultRunDir, RESOLVED_CONFIG_FILE, RunDir, writeTextAtomic } from '../run-dir.js';
import { disposeEmbedded, loadModels } from '../weights.js';

/** The settings a run started with, in its folder. */
export const DEMO_SETTINGS_FILE = 'demo.json';

export interface DemoCommandOptions {
  quick?: boolean;
  full?: boolean;
  steps?: number;
  rewardVideos?: number;
  rewardSteps?: number;
  control?: boolean;
  seed?: number;
  weights?: string;
  runDir?: string;
  resume?: string;
}

export interface DemoCommandResult extends DemoResult {
  runDir: string;
  report: string;
  elapsedMs: number;
}

/** The budgets: defaults, --quick (seconds, for tests) or --full (about three times the default), then --steps, --reward-videos, --reward-steps, --seed, --control. */
export function demoSettings(o: DemoCommandOptions): DemoSettings {
  if (o.quick && o.full) throw new UsageError('demo: --quick and --full exclude each other');
  const s: DemoSettings = { ...DEMO_DEFAULTS, ...(o.quick ? DEMO_QUICK : {}) };
  if (o.full) {
    s.rewardVideos *= 2;
    s.rewardSteps *= 2;
    s.evalVideos *= 2;
    s.prflSteps *= 3;
  }
  if (o.steps !== undefined) s.prflSteps = o.steps;
  if (o.rewardVideos !== undefined) s.rewardVideos = o.rewardVideos;
  if (o.rewardSteps !== undefined) s.rewardSteps = o.rewardSteps;
  if (o.seed !== undefined) s.seed = o.seed;
  if (o.control) s.control = true;
  return s;
}

export async function demoCommand(ctx: CommandContext, o: DemoCommandOptions): Promise<DemoCommandResult> {
  const began = performance.now();
  if (o.resume !== undefined && o.runDir !== undefined) {
    throw new UsageError('demo: give --resume RUN or --run-dir DIR, not both');
  }
  let runDir: string;
  if (o.resume !== undefined) {
    runDir = ctx.resolve(o.resume);
    if (!existsSync(`${runDir}/${RESOLVED_CONFIG_FILE}`)) {
      throw new UsageError(`--resume ${o.resume}: not a run folder (no ${RESOLVED_CONFIG_FILE})`);
    }
  } else {
    runDir = o.runDir !== undefined ? ctx.resolve(o.runDir) : defaultRunDir(ctx.io.cwd, 'demo', ctx.io.now());
  }
  // A resumed run keeps the budgets it started with (demo.json in its folder).
  const saved = path.join(runDir, DEMO_SETTINGS_FILE);
  let settings = demoSettings(o);
  if (o.resume !== undefined && existsSync(saved)) {
    settings = JSON.parse(readFileSync(saved, 'utf8')) as DemoSettings;
    ctx.note(`demo: resuming with the run's own settings (${DEMO_SETTINGS_FILE})`);
    // The control runs after everything else and changes none of it: a resume may add it.
    if (o.control) settings.control = true;
  }
  const config = await ctx.config();
  const run = await RunDir.open(runDir, config);
  const backend = await ctx.backend({ withWorkers: true });
  ctx.note(`demo: run folder ${runDir} (backend ${backend})`);
  run.metrics({ event: o.resume ? 'resume' : 'start', settings });
  await writeTextAtomic(saved, `${JSON.stringify(settings, null, 2)}\n`);
  const models = await loadModels(o.weights !== undefined ? ctx.resolve(o.weights) : undefined);
  try {
    const workers = ctx.workers();
    if (workers > 1) ctx.note(`demo: ${workers} worker threads (generation, PAVRM and PRFL training)`);
    const { result, frames } = await runDemo(
      models,
      runDir,
      settings,
      {
        phase: (name, total) => ctx.progress.phase(name, total),
        update: (done, metrics) => ctx.progress.update(done, metrics),
        log: (line) => ctx.note(line),
        metrics: (r) => run.metrics(r),
        signal: ctx.signal,
      },
      { workers },
    );
    ctx.progress.end();
    const report = run.file('report.html');
    await writeTextAtomic(report, renderReport(result, frames));
    run.metrics({ event: 'done', delta: result.delta });
    return { ...result, runDir, report, elapsedMs: Math.round(performance.now() - began) };
  } finally {
    disposeEmbedded(models);
    run.close();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const auc = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

export function formatDemo(r: DemoCommandResult): string {
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
  return [
    `PAVRM accuracy on held-out videos: ${pct(r.reward.average)} (${r.reward.buckets.map((b) => pct(b.accuracy)).join(' / ')} by sigma bucket; ` +
      `majority baseline ${pct(Math.max(r.reward.heldOutGoodRate, 1 - r.reward.heldOutGoodRate))})`,
    `PAVRM ROC-AUC: ${auc(r.reward.averageRocAuc)} (${r.reward.buckets.map((b) => auc(b.rocAuc)).join(' / ')}); ` +
      `within a prompt ${auc(r.reward.averageWithinPromptAuc)}`,
    `motion good:        ${pct(r.before.motionGood.rate)} -> ${pct(r.after.motionGood.rate)} (${sign(r.delta.motionGood)} points)`,
    `follows the prompt: ${pct(r.before.adherence.rate)} -> ${pct(r.after.adherence.rate)} (${sign(r.delta.adherence)} points)`,
    ...(r.control === undefined
      ? []
      : [
          `SFT term alone (control, same budget): motion good ${pct(r.control.after.motionGood.rate)} (${sign(r.control.delta.motionGood)} points), ` +
            `follows the prompt ${pct(r.control.after.adherence.rate)} (${sign(r.control.delta.adherence)} points)`,
        ]),
    `report: ${r.report}`,
    `done in ${(r.elapsedMs / 1000).toFixed(0)} s`,
  ].join('\n');
}
