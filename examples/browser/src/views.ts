/** What the page shows of each phase: the reward plots, the compute saved, the videos, the training curve. */
import type { ChainResult } from './chain.js';
import { h, seedColour } from './dom.js';
import { linePlot, type Series } from './plot.js';
import type { FinetuneStepReport } from './report.js';
import type { PruneRule } from './settings.js';

export interface ChainView {
  seeds: readonly string[];
  rewards: readonly (readonly (number | null)[])[];
  survivors: readonly number[];
  pruned?: ChainResult['pruned'];
}

/** One series per seed: p(good) after each step; a cross where a pruned seed stopped. */
export function rewardSeries(v: ChainView, labelOf: (i: number) => string, dashed = false): Series[] {
  return v.rewards.map((row, i) => ({
    label: labelOf(i),
    colour: seedColour(i),
    points: row.flatMap((p, j) => (p === null ? [] : [[j + 1, p] as const])),
    dashed,
    endCross: !v.survivors.includes(i),
  }));
}

export function chainPlot(v: ChainView, steps: number, rule: PruneRule, title: string): SVGSVGElement {
  return linePlot(
    rewardSeries(v, (i) => `seed ${i} (${v.seeds[i]})`),
    {
      title,
      xLabel: 'denoising steps done',
      yLabel: 'PAVRM p(good motion)',
      xRange: [1, steps],
      ...(v.pruned === undefined ? {} : { vLines: [{ x: v.pruned.afterStep, label: 'prune' }] }),
      ...(rule.kind === 'threshold' && v.pruned !== undefined
        ? { hLines: [{ y: rule.p, label: `p = ${rule.p}` }] }
        : {}),
    },
  );
}

/** The same seeds' reward curves before (solid) and after (dashed) fine-tuning, one colour per seed. */
export function comparePlot(
  before: ChainView,
  after: ChainView,
  steps: number,
  colourOf: (seed: string) => string,
): SVGSVGElement {
  const series = (v: ChainView, what: string, dashed: boolean) =>
    rewardSeries(v, (j) => `${what} ${v.seeds[j]}`, dashed).map((s, j) => ({
      ...s,
      colour: colourOf(v.seeds[j] as string),
    }));
  return linePlot([...series(before, 'before', false), ...series(after, 'after', true)], {
    title: 'The same seeds before (solid) and after (dashed) PRFL',
    xLabel: 'denoising steps done',
    yLabel: 'PAVRM p(good motion)',
    xRange: [1, steps],
  });
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** "DiT evaluations: 48 of 64 (saved 16, 25%) ..." */
export function computeText(r: ChainResult, msDecode: number): string {
  const c = r.compute;
  const parts = [
    `DiT evaluations: ${c.ditEvaluations} of ${c.ditEvaluationsWithoutPruning} (${c.ditPerSeedStep} per seed and step)`,
    r.pruned === undefined
      ? 'no pruning'
      : `saved ${c.ditEvaluationsSaved} (${(100 * c.fractionSaved).toFixed(0)}%) by stopping ${r.pruned.dropped.length} seed${r.pruned.dropped.length === 1 ? '' : 's'} after step ${r.pruned.afterStep}`,
    `${c.rewardEvaluations} PAVRM forwards`,
    `denoising and scoring took ${seconds(c.ms)}${r.pruned === undefined ? '' : `, about ${seconds(c.msSavedEstimate)} less than finishing every seed (${c.msPerSeedStep.toFixed(0)} ms per seed-step before the pruning point)`}`,
    `decoding ${seconds(msDecode)}`,
  ];
  return `${parts.join('; ')}.`;
}

/** A card per seed: its video (survivors) or where it was pruned, and its last reward. */
export function seedCard(v: ChainView, i: number, canvas?: HTMLCanvasElement): HTMLElement {
  const row = v.rewards[i] ?? [];
  const done = row.filter((p) => p !== null).length;
  const last = row[done - 1];
  const status =
    canvas === undefined
      ? [`pruned after step ${done}`, `p(good) then: ${last?.toFixed(3) ?? '?'}`]
      : ['finished', `p(good) of the clean latent: ${last?.toFixed(3) ?? '?'}`];
  return h(
    'figure',
    { class: `seed${canvas === undefined ? ' pruned' : ''}`, style: `border-color: ${seedColour(i)}` },
    canvas ?? h('div', { class: 'placeholder' }, 'pruned'),
    h('figcaption', {}, `seed ${i} (${v.seeds[i]}): ${status[0]}`, h('br'), status[1] as string),
  );
}

export function trainingPlot(steps: readonly FinetuneStepReport[], total: number): SVGSVGElement {
  const series: Series[] = [
    {
      label: 'loss (SFT + reward)',
      colour: '#e6194b',
      points: steps.map((m) => [m.step, m.loss] as const),
    },
    {
      label: 'p(good) of x_k+1',
      colour: '#4363d8',
      points: steps.map((m) => [m.step, m.reward] as const),
    },
  ];
  return linePlot(series, {
    title: 'PRFL: loss and reward per micro-step',
    xLabel: 'PRFL micro-step',
    yLabel: 'value',
    xRange: [1, Math.max(2, total)],
  });
}

/** Before and after videos of the same seed, side by side, with their final rewards. */
export function comparisonRow(
  seedLabel: string,
  colour: string,
  before: HTMLCanvasElement,
  after: HTMLCanvasElement,
  pBefore: number | null,
  pAfter: number | null,
): HTMLElement {
  const f = (p: number | null) => (p === null ? '?' : p.toFixed(3));
  return h(
    'div',
    { class: 'pair', style: `border-color: ${colour}` },
    h('figure', {}, before, h('figcaption', {}, `before: p(good) ${f(pBefore)}`)),
    h('figure', {}, after, h('figcaption', {}, `after: p(good) ${f(pAfter)}`)),
    h('p', { class: 'pair-label' }, seedLabel),
  );
}
