/**
 * The MovingShapes world: a clip is a prompt ("a red circle bouncing left to right"), what is actually
 * drawn (which differs from the prompt only under a wrong-* defect), a background, a motion plan and a
 * list of defects, together with its ground-truth labels. A clip spec is plain JSON and renders the same
 * pixels everywhere; `sampleClip` draws one from a seed, `renderClip` draws it.
 *
 * Sub-streams of the seed are used for the prompt, the scene and the defect, so the same seed with and
 * without a defect gives the same prompt, background and path: a good/bad pair that differs only in
 * the defect.
 */
import { Generator, InvalidArgumentError } from '@prfl/tensor';
import {
  ALIGNMENT_DEFECTS,
  type AlignmentDefectKind,
  applyStateDefects,
  type Defect,
  drawMotionDefect,
  isAlignmentDefect,
  isIntegrityDefect,
  isPhysicsDefect,
  MOTION_DEFECTS,
  type MotionDefectKind,
  warpTime,
} from './defects.js';
import { type Bounds, collisionTimes, type MotionPlan, planMotion, positionAt } from './motion.js';
import { formatPrompt, type PromptSpec } from './prompt.js';
import { type FrameState, renderScene, type Scene } from './render.js';
import { shapeExtent } from './shapes.js';
import { combinations, type Split } from './split.js';
import type { Video } from './video.js';
import {
  BACKGROUNDS,
  type Background,
  type BackgroundName,
  COLOUR_RGB,
  COLOURS,
  type ColourName,
  CONTRADICTING_MOTION,
  type MotionKind,
  SHAPES,
  type ShapeName,
  SIZE_RADIUS_64,
  SIZES,
  type SizeName,
} from './vocabulary.js';

/** Ground truth of a clip; 1 = good. */
export interface ClipLabels {
  /** Physically plausible motion (no jitter, teleport, stall or speed change). */
  physics: 0 | 1;
  /** Shape integrity (no deformation, no flicker): the analogue of the paper's human quality. */
  integrity: 0 | 1;
  /** physics AND integrity: the label PAVRM is trained on. */
  motionQuality: 0 | 1;
  /** The video shows what the prompt says (colour, shape, size, motion and direction). */
  textAlignment: 0 | 1;
}

/** What is drawn. */
export interface DrawnContent {
  colour: ColourName;
  shape: ShapeName;
  size: SizeName;
  background: Background;
  motion: MotionPlan;
}

/** A clip, complete: render it with `renderClip`. */
export interface ClipSpec {
  id: string;
  seed: number | string;
  frames: number;
  height: number;
  width: number;
  split: Split;
  prompt: string;
  /** What the prompt says. */
  said: PromptSpec;
  /** What is drawn. */
  drawn: DrawnContent;
  defects: Defect[];
  labels: ClipLabels;
}

export interface SampleClipOptions {
  /** The clip's seed: the same seed gives the same clip. */
  seed: number | string;
  /** Default 17 frames (a VAE with 4x time compression makes 1 + 16 / 4 = 5 latent frames). */
  frames?: number;
  /** Default 64 x 64 (8 x 8 latents at 8x space compression). */
  height?: number;
  width?: number;
  /**
   * Which combinations the prompt comes from: 'train' and 'val' draw from the combinations seen in
   * training, 'test' from the held-out ones (split.ts). Default 'train'.
   */
  split?: Split;
  /** A fixed prompt instead of a random one (its combination must belong to `split`'s side unless split is omitted). */
  prompt?: PromptSpec;
  /** A motion defect to inject, 'random' for one drawn uniformly, 'none' (default) for none. */
  motionDefect?: MotionDefectKind | 'random' | 'none';
  /** A prompt mismatch to inject, 'random', or 'none' (default). */
  alignmentDefect?: AlignmentDefectKind | 'random' | 'none';
  id?: string;
  /** Draw this background instead of a random one (the scene's other draws stay the same). */
  background?: Background;
  /**
   * Fraction (0 to 1, default 1) of the canvas a straight path (left, right, up, down) may use across
   * its direction: 0 keeps the path within 4 px of the canvas's middle line. Smaller worlds of fewer
   * positions are what a tiny generator learns to follow a prompt in. Other motions ignore it.
   */
  pathSpread?: number;
}

/** Deformations may stretch a shape by up to this factor: paths keep room for it. */
export const DEFORMATION_ROOM = 1.4;

/** The shape's equal-area radius in pixels for a canvas of this size. */
export function sizeRadius(size: SizeName, height: number, width: number): number {
  return (SIZE_RADIUS_64[size] * Math.min(height, width)) / 64;
}

/** The box the centroid stays in so that the shape (stretched by `room`) is on the canvas with a 1 px margin. */
export function centroidBounds(
  shape: ShapeName,
  radius: number,
  height: number,
  width: number,
  room = 1,
): Bounds {
  const e = shapeExtent(shape, radius);
  return {
    xmin: e.left * room + 1,
    xmax: width - e.right * room - 1,
    ymin: e.top * room + 1,
    ymax: height - e.bottom * room - 1,
  };
}

function pick<T>(rng: Generator, items: readonly T[]): T {
  return items[rng.nextInt(items.length)] as T;
}

function otherThan<T>(rng: Generator, items: readonly T[], not: T): T {
  const rest = items.filter((x) => x !== not);
  return pick(rng, rest);
}

function sampleBackground(rng: Generator): Background {
  if (rng.nextDouble() < 0.5) return { kind: 'solid', colour: pick(rng, BACKGROUNDS) };
  const from = pick(rng, BACKGROUNDS);
  const to = otherThan<BackgroundName>(rng, BACKGROUNDS, from);
  return { kind: 'gradient', from, to, angle: rng.nextDouble() * 2 * Math.PI };
}

/** The bounds of a straight path narrowed across its direction to `spread` of their room (>= 8 px). */
function narrowAcross(motion: MotionKind, b: Bounds, spread: number): Bounds {
  if (!(typeof spread === 'number' && spread >= 0 && spread <= 1)) {
    throw new InvalidArgumentError(
      `sampleClip: pathSpread must be a number in [0, 1], got ${String(spread)}`,
    );
  }
  const narrow = (lo: number, hi: number): [number, number] => {
    const mid = (lo + hi) / 2;
    const half = Math.min((hi - lo) / 2, Math.max(4, ((hi - lo) * spread) / 2));
    return [mid - half, mid + half];
  };
  if (motion === 'left' || motion === 'right') {
    const [ymin, ymax] = narrow(b.ymin, b.ymax);
    return { ...b, ymin, ymax };
  }
  if (motion === 'up' || motion === 'down') {
    const [xmin, xmax] = narrow(b.xmin, b.xmax);
    return { ...b, xmin, xmax };
  }
  return b;
}

function checkBackground(b: Background): Background {
  const ok =
    b !== null &&
    typeof b === 'object' &&
    ((b.kind === 'solid' && (BACKGROUNDS as readonly string[]).includes(b.colour)) ||
      (b.kind === 'gradient' &&
        (BACKGROUNDS as readonly string[]).includes(b.from) &&
        (BACKGROUNDS as readonly string[]).includes(b.to) &&
        Number.isFinite(b.angle)));
  if (!ok) {
    throw new InvalidArgumentError(
      `sampleClip: background must be { kind: 'solid', colour } or { kind: 'gradient', from, to, angle } with colours of ${BACKGROUNDS.join(', ')}, got ${JSON.stringify(b)}`,
    );
  }
  return b;
}

function checkCanvas(frames: number, height: number, width: number): void {
  if (!Number.isInteger(frames) || frames < 9) {
    throw new InvalidArgumentError(`sampleClip: frames must be an integer >= 9, got ${String(frames)}`);
  }
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isInteger(v) || v < 32) {
      throw new InvalidArgumentError(`sampleClip: ${name} must be an integer >= 32, got ${String(v)}`);
    }
  }
}

/**
 * The path time a time-warping defect must still reach: for a wall bounce, the first hit plus a return
 * leg of 35 % of the width between the walls (so the bounce the prompt asks for stays visible).
 */
function mustReach(motion: MotionPlan, duration: number): number {
  if (motion.kind !== 'walls') return 0;
  const first = collisionTimes(motion, duration)[0];
  if (first === undefined) return 0;
  return first + (0.35 * (motion.xmax - motion.xmin)) / Math.abs(motion.vx);
}

/** Draws a clip spec from a seed. Deterministic: the same options give the same spec. */
export function sampleClip(options: SampleClipOptions): ClipSpec {
  const frames = options.frames ?? 17;
  const height = options.height ?? 64;
  const width = options.width ?? 64;
  checkCanvas(frames, height, width);
  const split = options.split ?? 'train';
  const root = new Generator(options.seed);
  const promptRng = root.derive('prompt');
  const sceneRng = root.derive('scene');

  let said: PromptSpec;
  if (options.prompt) {
    said = { ...options.prompt };
  } else {
    const combo = pick(promptRng, combinations(split === 'test'));
    said = { ...combo, size: pick(promptRng, SIZES) };
  }

  // Prompt mismatch: what is drawn differs from what is said in one attribute.
  const defects: Defect[] = [];
  const drawnAttrs = { colour: said.colour, shape: said.shape, size: said.size, motion: said.motion };
  const alignmentKind =
    options.alignmentDefect === 'random'
      ? pick(root.derive('alignment-kind'), ALIGNMENT_DEFECTS)
      : (options.alignmentDefect ?? 'none');
  if (alignmentKind !== 'none') {
    const arng = root.derive('alignment');
    switch (alignmentKind) {
      case 'wrong-colour':
        drawnAttrs.colour = otherThan(arng, COLOURS, said.colour);
        defects.push({ kind: alignmentKind, drawn: drawnAttrs.colour });
        break;
      case 'wrong-shape':
        drawnAttrs.shape = otherThan(arng, SHAPES, said.shape);
        defects.push({ kind: alignmentKind, drawn: drawnAttrs.shape });
        break;
      case 'wrong-size':
        drawnAttrs.size =
          said.size === 'medium'
            ? pick(arng, ['small', 'large'] as const)
            : said.size === 'small'
              ? 'large'
              : 'small';
        defects.push({ kind: alignmentKind, drawn: drawnAttrs.size });
        break;
      case 'wrong-motion':
        drawnAttrs.motion = CONTRADICTING_MOTION[said.motion];
        defects.push({ kind: alignmentKind, drawn: drawnAttrs.motion });
        break;
      default:
        throw new InvalidArgumentError(
          `sampleClip: alignmentDefect must be one of ${ALIGNMENT_DEFECTS.join(', ')}, 'random' or 'none', got ${String(alignmentKind)}`,
        );
    }
  }

  const radius = sizeRadius(drawnAttrs.size, height, width);
  const planBounds = narrowAcross(
    drawnAttrs.motion,
    centroidBounds(drawnAttrs.shape, radius, height, width, DEFORMATION_ROOM),
    options.pathSpread ?? 1,
  );
  const drawnBackground = sampleBackground(sceneRng);
  const background = options.background === undefined ? drawnBackground : checkBackground(options.background);
  const contactBounds = centroidBounds(drawnAttrs.shape, radius, height, width, 1);
  const motion = planMotion(
    drawnAttrs.motion,
    planBounds,
    frames - 1,
    sceneRng.derive('motion'),
    contactBounds,
  );

  const motionKind =
    options.motionDefect === 'random'
      ? pick(root.derive('motion-defect-kind'), MOTION_DEFECTS)
      : (options.motionDefect ?? 'none');
  if (motionKind !== 'none') {
    if (!(MOTION_DEFECTS as readonly string[]).includes(motionKind)) {
      throw new InvalidArgumentError(
        `sampleClip: motionDefect must be one of ${MOTION_DEFECTS.join(', ')}, 'random' or 'none', got ${String(motionKind)}`,
      );
    }
    defects.push(
      drawMotionDefect(
        motionKind,
        {
          path: (t) => positionAt(motion, t),
          frames,
          bounds: contactBounds,
          scale: Math.min(height, width) / 64,
          collisions: collisionTimes(motion, frames - 1),
          mustReach: mustReach(motion, frames - 1),
        },
        root.derive('motion-defect'),
      ),
    );
  }

  const physics = defects.some(isPhysicsDefect) ? 0 : 1;
  const integrity = defects.some(isIntegrityDefect) ? 0 : 1;
  return {
    id: options.id ?? `ms-${String(options.seed)}`,
    seed: options.seed,
    frames,
    height,
    width,
    split,
    prompt: formatPrompt(said),
    said,
    drawn: { colour: drawnAttrs.colour, shape: drawnAttrs.shape, size: drawnAttrs.size, background, motion },
    defects,
    labels: {
      physics,
      integrity,
      motionQuality: physics && integrity ? 1 : 0,
      textAlignment: defects.some(isAlignmentDefect) ? 0 : 1,
    },
  };
}

/** The renderer's scene for a clip: the path read at warped times, then offsets, stretches and fades. */
export function clipScene(spec: ClipSpec): Scene {
  const states: FrameState[] = [];
  for (let t = 0; t < spec.frames; t++) {
    const [x, y] = positionAt(spec.drawn.motion, warpTime(spec.defects, t));
    states.push({ x, y, sx: 1, sy: 1, opacity: 1 });
  }
  applyStateDefects(spec.defects, states);
  return {
    width: spec.width,
    height: spec.height,
    shape: spec.drawn.shape,
    radius: sizeRadius(spec.drawn.size, spec.height, spec.width),
    colour: COLOUR_RGB[spec.drawn.colour],
    background: spec.drawn.background,
    states,
  };
}

/** Renders a clip: [F, H, W, 3] in [-1, 1]. Pass `out` to reuse a video buffer of the same size. */
export function renderClip(spec: ClipSpec, out?: Video): Video {
  return renderScene(clipScene(spec), out);
}

/** Options of a set of clips (see `sampleClips`). */
export interface ClipSetOptions {
  count: number;
  seed: number | string;
  split?: Split;
  frames?: number;
  height?: number;
  width?: number;
  /** Fraction of clips with a motion defect (default 0.5: balanced motion-quality labels). */
  motionDefectRate?: number;
  /** Fraction of clips with a prompt mismatch (default 0). */
  alignmentDefectRate?: number;
}

/**
 * `count` clip specs. With the default rates, exactly every other clip has a motion defect (labels are
 * balanced, not merely balanced in expectation); the defect kind is drawn uniformly.
 */
export function sampleClips(options: ClipSetOptions): ClipSpec[] {
  const { count } = options;
  if (!Number.isInteger(count) || count < 0) {
    throw new InvalidArgumentError(`sampleClips: count must be a non-negative integer, got ${String(count)}`);
  }
  const motionRate = options.motionDefectRate ?? 0.5;
  const alignRate = options.alignmentDefectRate ?? 0;
  const out: ClipSpec[] = [];
  for (let i = 0; i < count; i++) {
    // Stratified: clip i has a defect when floor((i + 1) * rate) > floor(i * rate); alignment uses a
    // different phase so the two kinds of defect are independent across the set.
    const hasMotion = Math.floor((i + 1) * motionRate) > Math.floor(i * motionRate);
    const j = Math.floor(i / 2) + (i % 2) * Math.ceil(count / 2);
    const hasAlign = Math.floor((j + 1) * alignRate) > Math.floor(j * alignRate);
    out.push(
      sampleClip({
        seed: `${String(options.seed)}/${i}`,
        id: `ms-${String(options.seed)}-${i}`,
        split: options.split ?? 'train',
        frames: options.frames,
        height: options.height,
        width: options.width,
        motionDefect: hasMotion ? 'random' : 'none',
        alignmentDefect: hasAlign ? 'random' : 'none',
      }),
    );
  }
  return out;
}
