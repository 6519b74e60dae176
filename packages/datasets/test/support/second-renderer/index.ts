/**
 * A second MovingShapes renderer, written independently of src/moving-shapes (only the world's words
 * and palette are shared: what "red", "navy" or "medium" mean). It checks the oracle on pixels our
 * renderer never makes: hard edges, supersampled edges, sizes between the named ones, and a VAE-like
 * finish (blur, noise, colour shift), with good motion and with each motion defect injected by its own
 * code. A clip is a function of (seed, rendering, defect).
 */
import { MOTION_DEFECTS, type MotionDefectKind } from '../../../src/moving-shapes/defects.js';
import type { PromptSpec } from '../../../src/moving-shapes/prompt.js';
import type { Video } from '../../../src/moving-shapes/video.js';
import {
  BACKGROUND_RGB,
  BACKGROUNDS,
  COLOUR_RGB,
  COLOURS,
  MOTIONS,
  SHAPES,
  SIZE_RADIUS_64,
  SIZES,
} from '../../../src/moving-shapes/vocabulary.js';
import { defectStates, goodStates, type State } from './defects.js';

export type { State };
import { type Outline, outline } from './geometry.js';
import { type Box, drawPath } from './paths.js';
import { blur, shiftAndNoise } from './post.js';
import { type Backdrop, rasterise } from './raster.js';
import { Rng } from './rng.js';

export { MOTION_DEFECTS };

/** How a clip is drawn and finished. Ranges are drawn uniformly per clip. */
export interface Rendering {
  /** Sub-samples per pixel side (1: hard edges). */
  samples: number;
  /** Equal-area radius on a 64 x 64 canvas: the prompt's size, or drawn from a range. */
  radius: 'named' | [number, number];
  /** Multiplies the radius (a decoder that draws things slightly larger or smaller). */
  radiusJitter?: number;
  blur?: [number, number];
  noise?: [number, number];
  colourShift?: number;
}

export const RENDERINGS = {
  'hard-edged': { samples: 1, radius: 'named' },
  'anti-aliased': { samples: 4, radius: 'named' },
  'other sizes': { samples: 1, radius: [3.5, 11] },
  blurred: { samples: 1, radius: 'named', blur: [0.5, 1.5] },
  noisy: { samples: 1, radius: 'named', noise: [0.02, 0.05] },
  'VAE-like': {
    samples: 4,
    radius: 'named',
    radiusJitter: 0.1,
    blur: [0.5, 1.5],
    noise: [0.02, 0.05],
    colourShift: 0.05,
  },
} as const satisfies Record<string, Rendering>;

export type RenderingName = keyof typeof RENDERINGS;
export const RENDERING_NAMES = Object.keys(RENDERINGS) as RenderingName[];

export interface SecondClip {
  video: Video;
  /** What is drawn, as a prompt (size is the named size nearest to the drawn radius). */
  said: PromptSpec;
  radius: number;
  defect: MotionDefectKind | 'none';
  /** Where the shape was drawn in each frame (centroid, stretch, opacity): the truth the oracle estimates. */
  states: State[];
  /** The good path the defect was injected into, read at each frame's time. */
  clean: Array<[number, number]>;
  /** The shape's outline at its drawn radius. */
  outline: Outline;
}

export interface SecondClipOptions {
  seed: string;
  rendering: RenderingName | Rendering;
  defect?: MotionDefectKind | 'none';
  frames?: number;
  /** Canvas side (square), default 64. */
  size?: number;
}

/** One clip; deterministic in its options. */
export function secondClip(options: SecondClipOptions): SecondClip {
  const frames = options.frames ?? 17;
  const side = options.size ?? 64;
  const scale = side / 64;
  const defect = options.defect ?? 'none';
  const r =
    typeof options.rendering === 'string' ? (RENDERINGS[options.rendering] as Rendering) : options.rendering;
  const rng = new Rng(
    `${options.seed}|${typeof options.rendering === 'string' ? options.rendering : JSON.stringify(options.rendering)}|${defect}`,
  );
  for (let attempt = 0; ; attempt++) {
    const colour = rng.pick(COLOURS);
    const shape = rng.pick(SHAPES);
    const motion = rng.pick(MOTIONS);
    let size = rng.pick(SIZES);
    let radius64 = r.radius === 'named' ? SIZE_RADIUS_64[size] : rng.uniform(r.radius[0], r.radius[1]);
    if (r.radiusJitter) radius64 *= 1 + rng.uniform(-r.radiusJitter, r.radiusJitter);
    if (r.radius !== 'named')
      size = radius64 < Math.sqrt(35) ? 'small' : radius64 < Math.sqrt(63) ? 'medium' : 'large';
    const radius = radius64 * scale;
    const o = outline(shape, radius);
    // The centroid's room keeps the shape on the canvas when stretched by 1.4, with a pixel to spare;
    // walls and the floor are where the undeformed shape touches the canvas edge.
    const room: Box = {
      x0: 1.4 * o.left + 1,
      x1: side - 1.4 * o.right - 1,
      y0: 1.4 * o.up + 1,
      y1: side - 1.4 * o.down - 1,
    };
    const touch: Box = { x0: o.left, x1: side - o.right, y0: o.up, y1: side - o.down };
    const onCanvas: Box = { x0: o.left + 1, x1: side - o.right - 1, y0: o.up + 1, y1: side - o.down - 1 };
    if (room.x1 - room.x0 < 8 || room.y1 - room.y0 < 8) continue;
    const path = drawPath(motion, room, touch, frames - 1, rng);
    const states: State[] | undefined =
      defect === 'none' ? goodStates(path, frames) : defectStates(defect, path, frames, onCanvas, scale, rng);
    if (!states) {
      if (attempt > 200) throw new Error(`secondClip: no ${defect} fits after 200 paths (${options.seed})`);
      continue;
    }
    let backdrop: Backdrop;
    if (rng.next() < 0.5) backdrop = { colour: BACKGROUND_RGB[rng.pick(BACKGROUNDS)] };
    else {
      const from = rng.pick(BACKGROUNDS);
      const to = rng.pick(BACKGROUNDS.filter((b) => b !== from));
      backdrop = { from: BACKGROUND_RGB[from], to: BACKGROUND_RGB[to], angle: rng.uniform(0, 2 * Math.PI) };
    }
    const video = rasterise(states, {
      width: side,
      height: side,
      outline: o,
      colour: COLOUR_RGB[colour],
      backdrop,
      samples: r.samples,
    });
    if (r.blur) blur(video, rng.uniform(r.blur[0], r.blur[1]) * scale);
    const noise = r.noise ? rng.uniform(r.noise[0], r.noise[1]) : 0;
    if (noise > 0 || r.colourShift) shiftAndNoise(video, r.colourShift ?? 0, noise, rng);
    const clean = states.map((_, t) => path.at(t));
    return { video, said: { colour, shape, size, motion }, radius, defect, states, clean, outline: o };
  }
}
