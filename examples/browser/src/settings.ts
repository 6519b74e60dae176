/**
 * What one run of the page does, read from the URL (so a test can make it small) and from the form.
 * Every value is checked; a bad one is an error that names the parameter and what it accepts.
 */

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'wasm', 'cpu'];

/** Where the VAE runs: `auto` is wasm when the main backend is WebGPU, else the main backend. */
export type VaeChoice = 'auto' | 'main' | 'wasm';
export const VAE_CHOICES: readonly VaeChoice[] = ['auto', 'main', 'wasm'];

/** Which seeds survive the pruning point. */
export type PruneRule = { kind: 'none' } | { kind: 'top-k'; k: number } | { kind: 'threshold'; p: number };

export interface Settings {
  backend: BackendChoice;
  vae: VaeChoice;
  /** The prompt's words, from the world's vocabulary ("a large <colour> <shape> moving <motion>"). */
  colour: string;
  shape: string;
  motion: string;
  /** Seeds denoised together; seed i draws its noise from `${baseSeed}-${i}`. */
  seeds: number;
  baseSeed: number;
  /** Sampling steps (flow UniPC, shift 5) and classifier-free guidance: the shipped sampler's. */
  steps: number;
  guidance: number;
  /** Prune after this many steps, with `rule`. */
  pruneAfter: number;
  rule: PruneRule;
  /** PRFL micro-steps, videos per micro-step, learning rate, good clips for the SFT term. */
  prflSteps: number;
  prflBatch: number;
  lr: number;
  clips: number;
  /** Run generate -> prune -> PRFL -> regenerate without clicks. */
  auto: boolean;
}

/** The shipped sampler (`prfl sample`'s defaults), 4 seeds, keep the best half after a quarter of the steps. */
export const DEFAULTS: Readonly<Settings> = Object.freeze({
  backend: 'auto',
  vae: 'auto',
  colour: 'red',
  shape: 'circle',
  motion: 'right',
  seeds: 4,
  baseSeed: 1,
  steps: 20,
  guidance: 4,
  pruneAfter: 5,
  rule: Object.freeze({ kind: 'top-k', k: 2 }) as PruneRule,
  prflSteps: 4,
  prflBatch: 2,
  lr: 1e-4,
  clips: 8,
  auto: false,
});

export class SettingsError extends Error {
  override name = 'SettingsError';
}

function integer(name: string, text: string, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new SettingsError(`${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(text)}`);
  }
  return v;
}

function number(name: string, text: string, min: number, max: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
    throw new SettingsError(`${name}: expected a number in [${min}, ${max}], got ${JSON.stringify(text)}`);
  }
  return v;
}

function oneOf<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new SettingsError(`${name}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text as T;
}

/** The default prune point and rule for a number of seeds and steps. */
export function defaultPruning(seeds: number, steps: number): Pick<Settings, 'pruneAfter' | 'rule'> {
  return {
    pruneAfter: Math.max(1, Math.min(steps - 1, Math.round(steps / 4))),
    rule: seeds > 1 ? { kind: 'top-k', k: Math.max(1, Math.floor(seeds / 2)) } : { kind: 'none' },
  };
}

/** Checks the relations between values (ranges are checked as they are read). */
export function checkSettings(s: Settings): Settings {
  if (s.rule.kind !== 'none' && (s.pruneAfter < 1 || s.pruneAfter >= s.steps)) {
    throw new SettingsError(
      `pruneAfter: expected a step in [1, ${s.steps - 1}] (after the first step, before the last), got ${s.pruneAfter}`,
    );
  }
  if (s.rule.kind === 'top-k' && s.rule.k > s.seeds) {
    throw new SettingsError(`keep: cannot keep the best ${s.rule.k} of ${s.seeds} seeds`);
  }
  if (s.prflBatch > s.clips) {
    throw new SettingsError(
      `prflBatch: a batch of ${s.prflBatch} needs at least as many SFT clips, got clips=${s.clips}`,
    );
  }
  return s;
}

/**
 * Settings from URL parameters over the defaults: backend, vae, colour, shape, motion, seeds, seed, steps,
 * guidance, pruneAt, keep (top k; 0 = no pruning), threshold (instead of keep), prflSteps, prflBatch,
 * lr, clips, auto=1.
 */
export function settingsFromUrl(search: string, vocabulary: Vocabulary): Settings {
  const q = new URLSearchParams(search);
  const get = (k: string) => q.get(k) ?? undefined;
  const seeds = get('seeds') === undefined ? DEFAULTS.seeds : integer('seeds', get('seeds')!, 1, 16);
  const steps = get('steps') === undefined ? DEFAULTS.steps : integer('steps', get('steps')!, 2, 50);
  const pruning = defaultPruning(seeds, steps);
  let rule = pruning.rule;
  if (get('threshold') !== undefined) {
    rule = { kind: 'threshold', p: number('threshold', get('threshold')!, 0, 1) };
  } else if (get('keep') !== undefined) {
    const k = integer('keep', get('keep')!, 0, seeds);
    rule = k === 0 ? { kind: 'none' } : { kind: 'top-k', k };
  }
  const s: Settings = {
    backend: oneOf('backend', get('backend') ?? DEFAULTS.backend, BACKEND_CHOICES),
    vae: oneOf('vae', get('vae') ?? DEFAULTS.vae, VAE_CHOICES),
    colour: oneOf('colour', get('colour') ?? DEFAULTS.colour, vocabulary.colours),
    shape: oneOf('shape', get('shape') ?? DEFAULTS.shape, vocabulary.shapes),
    motion: oneOf('motion', get('motion') ?? DEFAULTS.motion, vocabulary.motions),
    seeds,
    baseSeed: get('seed') === undefined ? DEFAULTS.baseSeed : integer('seed', get('seed')!, 0, 1e9),
    steps,
    guidance: get('guidance') === undefined ? DEFAULTS.guidance : number('guidance', get('guidance')!, 1, 20),
    pruneAfter:
      get('pruneAt') === undefined ? pruning.pruneAfter : integer('pruneAt', get('pruneAt')!, 1, steps - 1),
    rule,
    prflSteps:
      get('prflSteps') === undefined ? DEFAULTS.prflSteps : integer('prflSteps', get('prflSteps')!, 1, 200),
    prflBatch:
      get('prflBatch') === undefined ? DEFAULTS.prflBatch : integer('prflBatch', get('prflBatch')!, 1, 8),
    lr: get('lr') === undefined ? DEFAULTS.lr : number('lr', get('lr')!, 0, 1e-2),
    clips: get('clips') === undefined ? DEFAULTS.clips : integer('clips', get('clips')!, 1, 64),
    auto: get('auto') === '1',
  };
  return checkSettings(s);
}

/** The words a prompt may use (the shipped world's, from weights/manifest.json). */
export interface Vocabulary {
  colours: readonly string[];
  shapes: readonly string[];
  motions: readonly string[];
  sizes: readonly string[];
}

/** The prompt of the embedded world's grammar: "a large red circle moving right". */
export function promptOf(s: Pick<Settings, 'colour' | 'shape' | 'motion'>, size: string): string {
  const first = size === 'medium' ? s.colour : size;
  const article = /^[aeiou]/.test(first) ? 'an' : 'a';
  return `${article} ${size === 'medium' ? '' : `${size} `}${s.colour} ${s.shape} moving ${s.motion}`;
}
