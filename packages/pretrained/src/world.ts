/**
 * The part of MovingShapes the embedded models learn: fewer colours, shapes, sizes and motions than the
 * whole world, so that a generator of a quarter of a million parameters, trained in minutes on a CPU,
 * draws them well. One background, and straight paths along the canvas's middle lines: a generator that
 * small, trained on MovingShapes' random backgrounds and positions, learned colour but not shape or
 * direction (its motion followed the prompt in 21% of 48 videos after 11000 steps, chance 25%).
 *
 * Prompts split compositionally, as the whole world does: a few colour x shape x motion combinations are
 * held out of every training stage and only used to judge the models on prompts they never saw, whose
 * words they all saw.
 */
import {
  type Background,
  type ClipSpec,
  type ColourName,
  type MotionKind,
  type PromptSpec,
  type ShapeName,
  type SizeName,
  sampleClip,
} from '@prfl/datasets';
import { Generator, InvalidArgumentError } from '@prfl/tensor';

/** The vocabulary of the embedded world and the size of its clips. */
export interface EmbeddedWorld {
  readonly colours: readonly ColourName[];
  readonly shapes: readonly ShapeName[];
  readonly sizes: readonly SizeName[];
  readonly motions: readonly MotionKind[];
  /** Frames, height, width of every clip (the tiny VAE maps 17 x 64 x 64 to [5, 8, 8, 16]). */
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  /**
   * A combination (colour i, shape j, motion k) is held out when (i + j + k) % heldOutModulus === 0;
   * every colour, shape and motion stays in training.
   */
  readonly heldOutModulus: number;
  /** The one background of every clip (omitted: MovingShapes' random ones). */
  readonly background?: Background;
  /** How much of the canvas a path may use across its direction (0 to 1; `sampleClip`'s pathSpread; default 1). */
  readonly pathSpread?: number;
}

/** What the shipped models were trained on. */
export const EMBEDDED_WORLD: EmbeddedWorld = Object.freeze({
  colours: Object.freeze(['red', 'yellow', 'green', 'blue'] as ColourName[]),
  shapes: Object.freeze(['circle', 'square', 'triangle'] as ShapeName[]),
  sizes: Object.freeze(['large'] as SizeName[]),
  motions: Object.freeze(['left', 'right', 'up', 'down'] as MotionKind[]),
  frames: 17,
  height: 64,
  width: 64,
  heldOutModulus: 6,
  background: Object.freeze({ kind: 'solid', colour: 'black' }) as Background,
  pathSpread: 0,
});

/**
 * The same vocabulary and clip size on MovingShapes' random backgrounds and positions: what the VAE
 * trains on. A VAE trained on the narrow world's clips alone reconstructed them worse (on 200 of its
 * held-out clips the oracle's prompt-adherence labels agreed 82% of the time, against 90% for one
 * trained on these; same recipe, same seed).
 */
export function wideScenes(world: EmbeddedWorld): EmbeddedWorld {
  const { background: _b, pathSpread: _p, ...rest } = world;
  return Object.freeze({ ...rest });
}

/** Whether a prompt's combination is one of the held-out ones (see `EmbeddedWorld.heldOutModulus`). */
export function isHeldOut(world: EmbeddedWorld, p: PromptSpec): boolean {
  const c = world.colours.indexOf(p.colour);
  const s = world.shapes.indexOf(p.shape);
  const m = world.motions.indexOf(p.motion);
  if (c < 0 || s < 0 || m < 0 || !world.sizes.includes(p.size)) {
    throw new InvalidArgumentError(
      `isHeldOut: expected a prompt of the embedded world (${world.colours.join('/')} ${world.shapes.join('/')} ${world.motions.join('/')}), got ${JSON.stringify(p)}`,
    );
  }
  return (c + s + m) % world.heldOutModulus === 0;
}

/** Every prompt of one side of the split, in a fixed order. */
export function worldPrompts(world: EmbeddedWorld, side: 'train' | 'held-out'): PromptSpec[] {
  const out: PromptSpec[] = [];
  for (const colour of world.colours) {
    for (const shape of world.shapes) {
      for (const motion of world.motions) {
        for (const size of world.sizes) {
          const p: PromptSpec = { colour, shape, size, motion };
          if (isHeldOut(world, p) === (side === 'held-out')) out.push(p);
        }
      }
    }
  }
  return out;
}

export interface WorldClipOptions {
  /** Which prompts: the training ones or the held-out ones. */
  side: 'train' | 'held-out';
  count: number;
  /** Seeds are `${seed}-${i}`: the same seed gives the same clips. */
  seed: string | number;
  /** Fraction of clips with a motion defect (stratified: exactly round(count * rate)); default 0. */
  motionDefectRate?: number;
}

/**
 * `count` clip specs of the embedded world: prompts cycle through the side's prompts in a seeded order,
 * the scene (background, path, speed) comes from the clip's seed.
 */
export function sampleWorldClips(world: EmbeddedWorld, options: WorldClipOptions): ClipSpec[] {
  const { count, seed, side } = options;
  if (!Number.isInteger(count) || count < 0) {
    throw new InvalidArgumentError(
      `sampleWorldClips: count must be a non-negative integer, got ${String(count)}`,
    );
  }
  const rate = options.motionDefectRate ?? 0;
  if (!(rate >= 0 && rate <= 1)) {
    throw new InvalidArgumentError(
      `sampleWorldClips: motionDefectRate must be in [0, 1], got ${String(rate)}`,
    );
  }
  const prompts = worldPrompts(world, side);
  const order = new Generator(`${String(seed)}-order`).permutation(prompts.length);
  const out: ClipSpec[] = [];
  for (let i = 0; i < count; i++) {
    const defect = Math.floor((i + 1) * rate) > Math.floor(i * rate);
    const prompt = prompts[order[i % prompts.length] as number] as PromptSpec;
    out.push(
      sampleClip({
        seed: `${String(seed)}-${i}`,
        frames: world.frames,
        height: world.height,
        width: world.width,
        prompt,
        motionDefect: defect ? 'random' : 'none',
        ...(world.background === undefined ? {} : { background: world.background }),
        ...(world.pathSpread === undefined ? {} : { pathSpread: world.pathSpread }),
      }),
    );
  }
  return out;
}
