/**
 * What the page publishes on `window.__prfl` for tests and for anyone curious in the console: plain
 * data, every number computed by the run (nothing is filled in when a phase did not happen).
 */
import type { StartedBackend } from './backend.js';
import type { ComputeSaved } from './chain.js';
import type { Settings } from './settings.js';

export interface GenerationReport {
  prompt: string;
  seeds: string[];
  /** rewards[seed][j]: the PAVRM's probability after j + 1 steps; null once the seed was pruned. */
  rewards: (number | null)[][];
  timesteps: number[];
  survivors: number[];
  pruned?: { afterStep: number; kept: number[]; dropped: number[] };
  compute: ComputeSaved;
  /** Wall time of decoding the survivors. */
  msDecode: number;
  /** data-video labels of the canvases showing the survivors, in the order of `survivors`. */
  canvases: string[];
}

export interface FinetuneStepReport {
  step: number;
  loss: number;
  sftLoss: number | null;
  rewardLoss: number;
  reward: number;
  k: number;
  ms: number;
  /** Wall time of each phase of the micro-step (sft, rollout, taped-step, reward, backward, update), ms. */
  phases: Record<string, number>;
}

export interface FinetuneReport {
  steps: FinetuneStepReport[];
  msData: number;
  msTraining: number;
  msPerStep: number;
}

export interface PageReport {
  /** The automatic run (or the last fine-tune and regeneration) has finished. */
  done: boolean;
  /** The first error shown on the page. */
  error?: string;
  settings?: Settings;
  backend?: StartedBackend;
  msLoad?: number;
  /** Before fine-tuning, and the same seeds regenerated after it (without pruning). */
  generation?: GenerationReport;
  finetune?: FinetuneReport;
  regeneration?: GenerationReport;
  /** tf.memory().numTensors after loading the models and after each phase (a leak check). */
  tensors: Partial<Record<'load' | 'generation' | 'finetune' | 'regeneration', number>>;
}

declare global {
  interface Window {
    __prfl: PageReport;
  }
}

export function pageReport(): PageReport {
  window.__prfl ??= { done: false, tensors: {} };
  return window.__prfl;
}
