/**
 * Prompt adherence from a track: does the video show the prompt's colour, shape, size and motion?
 *
 * - colour: the object's core colour minus the background is compared with (palette colour minus the
 *   background) up to a coverage factor in [0.35, 1.15]: blur and fading mix the colour with the
 *   background but keep its direction. The nearest palette colour must be the prompt's;
 * - shape: on up to three frames with typical area and extent, the soft mask is compared (normalised
 *   cross-correlation) with each shape rendered at the measured area and centroid, blurred by what the
 *   second moments say the video's blur is. The best-matching shape must be the prompt's;
 * - size: radius sqrt(median area / pi), classified at the geometric means of the nominal radii;
 * - motion: a predicate per motion kind on the centroid path, robust to the physics defects (Theil-Sen
 *   slopes for directions, a back-and-forth with hysteresis, teleports removed, for wall bounces, the swept angle around a fitted circle for orbits).
 */
import { InvalidArgumentError } from '@prfl/tensor';
import { parsePrompt, type PromptSpec } from '../prompt.js';
import { shapeCoverage, shapeDistance } from '../shapes.js';
import type { Video } from '../video.js';
import {
  COLOUR_RGB,
  COLOURS,
  type ColourName,
  motionFamily,
  type MotionKind,
  SHAPES,
  type ShapeName,
  SIZE_RADIUS_64,
  SIZES,
  type SizeName,
} from '../vocabulary.js';
import { filledPath } from './path.js';
import { scoreFromRatio, type OracleThresholds } from './thresholds.js';
import { alphaWindow, type Track, type TrackedFrame } from './track.js';

export interface AttributeCheck<T> {
  expected: T;
  observed: T | undefined;
  ok: boolean;
  /** In (0, 1); 0.5 at the decision boundary. */
  score: number;
}

export interface MotionCheck {
  expected: MotionKind;
  ok: boolean;
  score: number;
  /** Net travel (px) along x and y from robust slopes. */
  travel: [number, number];
  /** Back-and-forth swings along x of at least `wallSwing` px. */
  swings: number;
  /** Swept angle (radians, positive = clockwise on screen) around a circle fitted to the path. */
  sweep: number;
}

export interface PromptAdherenceReport {
  score: number;
  label: 0 | 1;
  colour: AttributeCheck<ColourName>;
  shape: AttributeCheck<ShapeName>;
  size: AttributeCheck<SizeName>;
  motion: MotionCheck;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : 0.5 * ((s[m - 1] as number) + (s[m] as number));
}

/** Ranks alternatives by error (lower is better): the winner and a score from the margin to the expected one. */
function decide<T>(expected: T, errors: Map<T, number>, softness: number): AttributeCheck<T> {
  let best: T | undefined;
  let bestErr = Infinity;
  let secondErr = Infinity;
  for (const [k, e] of errors) {
    if (e < bestErr) {
      secondErr = bestErr;
      bestErr = e;
      best = k;
    } else if (e < secondErr) secondErr = e;
  }
  const ok = best === expected;
  const expErr = errors.get(expected) ?? Infinity;
  // Margin: how much better the expected one is than the best other (ok) or how much worse than the winner.
  const margin = ok ? secondErr - expErr : bestErr - expErr;
  const score = 1 / (1 + Math.exp(-margin / softness));
  return { expected, observed: best, ok, score: Number.isFinite(score) ? score : ok ? 1 : 0 };
}

export function checkColour(track: Track, expected: ColourName): AttributeCheck<ColourName> {
  const frames = track.perFrame.filter((f) => f.present);
  if (frames.length === 0) return { expected, observed: undefined, ok: false, score: 0 };
  const d = [0, 1, 2].map((c) =>
    median(frames.map((f) => (f.colour[c] as number) - (f.background[c] as number))),
  );
  const bg = [0, 1, 2].map((c) => median(frames.map((f) => f.background[c] as number)));
  const norm = Math.hypot(d[0] as number, d[1] as number, d[2] as number) || 1;
  const errors = new Map<ColourName, number>();
  for (const name of COLOURS) {
    const q = (COLOUR_RGB[name] as readonly number[]).map((v, c) => v - (bg[c] as number));
    const qq = q.reduce((s, v) => s + v * v, 0);
    const dq = q.reduce((s, v, c) => s + v * (d[c] as number), 0);
    const alpha = Math.min(1.15, Math.max(0.35, qq > 0 ? dq / qq : 0));
    const err = Math.hypot(...q.map((v, c) => (d[c] as number) - alpha * v));
    errors.set(name, err / norm);
  }
  return decide(expected, errors, 0.05);
}

export function sizeOfRadius(radius: number, height: number, width: number): SizeName {
  const r = (radius * 64) / Math.min(height, width);
  const smallMedium = Math.sqrt(SIZE_RADIUS_64.small * SIZE_RADIUS_64.medium);
  const mediumLarge = Math.sqrt(SIZE_RADIUS_64.medium * SIZE_RADIUS_64.large);
  return r < smallMedium ? 'small' : r < mediumLarge ? 'medium' : 'large';
}

export function checkSize(track: Track, expected: SizeName): AttributeCheck<SizeName> {
  const frames = track.perFrame.filter((f) => f.present);
  if (frames.length === 0) return { expected, observed: undefined, ok: false, score: 0 };
  const radius = Math.sqrt(median(frames.map((f) => f.area)) / Math.PI);
  const scale = Math.min(track.height, track.width) / 64;
  const errors = new Map<SizeName, number>();
  for (const s of SIZES) errors.set(s, Math.abs(Math.log(radius / (SIZE_RADIUS_64[s] * scale))));
  const check = decide(expected, errors, 0.04);
  return { ...check, observed: sizeOfRadius(radius, track.height, track.width) };
}

/** Second moment trace (cxx + cyy) of a shape of size r, computed once by fine sampling. */
const TRACE_PER_R2 = new Map<ShapeName, number>();
function traceOf(shape: ShapeName, r: number): number {
  let t = TRACE_PER_R2.get(shape);
  if (t === undefined) {
    let s = 0;
    let n = 0;
    const R = 10;
    for (let i = -3 * R; i <= 3 * R; i += 0.125) {
      for (let j = -3 * R; j <= 3 * R; j += 0.125) {
        if (shapeDistance(shape, j, i, R) <= 0) {
          s += i * i + j * j;
          n++;
        }
      }
    }
    t = s / n / (R * R);
    TRACE_PER_R2.set(shape, t);
  }
  return t * r * r;
}

function gaussianBlurPatch(patch: Float32Array, size: number, sigma: number): Float32Array {
  if (sigma < 0.15) return patch;
  const radius = Math.ceil(3 * sigma);
  const k = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] = (k[i] as number) / sum;
  const tmp = new Float32Array(size * size);
  const out = new Float32Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let acc = 0;
      for (let q = -radius; q <= radius; q++) {
        const jj = j + q;
        if (jj >= 0 && jj < size) acc += (k[q + radius] as number) * (patch[i * size + jj] as number);
      }
      tmp[i * size + j] = acc;
    }
  }
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let acc = 0;
      for (let q = -radius; q <= radius; q++) {
        const ii = i + q;
        if (ii >= 0 && ii < size) acc += (k[q + radius] as number) * (tmp[ii * size + j] as number);
      }
      out[i * size + j] = acc;
    }
  }
  return out;
}

function ncc(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma;
    const db = (b[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/** Frames whose area and extents are closest to the clip's medians (up to `count`, spread over the clip). */
function typicalFrames(track: Track, count: number): number[] {
  const idx = track.perFrame.flatMap((f, i) => (f.present ? [i] : []));
  if (idx.length === 0) return [];
  const mA = median(idx.map((i) => (track.perFrame[i] as TrackedFrame).area));
  const mX = median(idx.map((i) => (track.perFrame[i] as TrackedFrame).cxx));
  const mY = median(idx.map((i) => (track.perFrame[i] as TrackedFrame).cyy));
  const dev = (i: number) => {
    const f = track.perFrame[i] as TrackedFrame;
    return Math.abs(Math.log(f.area / mA)) + Math.abs(Math.log(f.cxx / mX)) + Math.abs(Math.log(f.cyy / mY));
  };
  return idx
    .map((i) => [i, dev(i)] as const)
    .sort((a, b) => a[1] - b[1])
    .slice(0, count)
    .map(([i]) => i);
}

export function checkShape(video: Video, track: Track, expected: ShapeName): AttributeCheck<ShapeName> {
  const chosen = typicalFrames(track, 3);
  if (chosen.length === 0) return { expected, observed: undefined, ok: false, score: 0 };
  const errors = new Map<ShapeName, number>(SHAPES.map((s) => [s, 0]));
  for (const f of chosen) {
    const t = track.perFrame[f] as TrackedFrame;
    const r = Math.sqrt(t.area / Math.PI);
    const half = Math.ceil(1.6 * r + 3);
    const size = 2 * half;
    const observed = alphaWindow(video, f, t, t.x, t.y, half);
    const oi = Math.floor(t.y) - half;
    const oj = Math.floor(t.x) - half;
    for (const shape of SHAPES) {
      const tpl = new Float32Array(size * size);
      for (let wi = 0; wi < size; wi++) {
        const v = oi + wi + 0.5 - t.y;
        for (let wj = 0; wj < size; wj++) {
          tpl[wi * size + wj] = shapeCoverage(shape, oj + wj + 0.5 - t.x, v, r);
        }
      }
      // The video's blur, as the second moments see it: trace grows by 2 sigma^2.
      const blur2 = (t.cxx + t.cyy - traceOf(shape, r)) / 2;
      const blurred = gaussianBlurPatch(tpl, size, blur2 > 0 ? Math.sqrt(blur2) : 0);
      errors.set(shape, (errors.get(shape) as number) + (1 - ncc(observed, blurred)) / chosen.length);
    }
  }
  return decide(expected, errors, 0.01);
}

/** Theil-Sen slope of values over frame indices (median of pairwise slopes). */
function theilSen(values: readonly number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < values.length; i++) {
    for (let j = i + 1; j < values.length; j++)
      slopes.push(((values[j] as number) - (values[i] as number)) / (j - i));
  }
  return slopes.length ? median(slopes) : 0;
}

/**
 * x with teleports replaced by interpolation: a frame (or two adjacent frames) more than `jump` px from
 * the midpoint of the frames around it. A wall hit bends the path by at most one step (< `jump`).
 */
function despike(x: readonly number[], y: readonly number[], jump: number): number[] {
  const n = x.length;
  const bad = new Array<boolean>(n).fill(false);
  // Distance between the midpoint of frames a, b and the midpoint of frames c, d.
  const dev = (a: number, b: number, c: number, d: number) =>
    Math.hypot(
      ((x[a] as number) + (x[b] as number) - (x[c] as number) - (x[d] as number)) / 2,
      ((y[a] as number) + (y[b] as number) - (y[c] as number) - (y[d] as number)) / 2,
    );
  for (let t = 1; t + 1 < n; t++) if (dev(t, t, t - 1, t + 1) > jump) bad[t] = true;
  for (let t = 1; t + 2 < n; t++) {
    if (
      dev(t, t + 1, t - 1, t + 2) > jump &&
      Math.hypot((x[t] as number) - (x[t + 1] as number), (y[t] as number) - (y[t + 1] as number)) < jump
    ) {
      bad[t] = true;
      bad[t + 1] = true;
    }
  }
  const out = [...x];
  for (let t = 0; t < n; t++) {
    if (!bad[t]) continue;
    let a = t - 1;
    while (a >= 0 && bad[a]) a--;
    let b = t + 1;
    while (b < n && bad[b]) b++;
    if (a >= 0 && b < n)
      out[t] = (x[a] as number) + (((x[b] as number) - (x[a] as number)) * (t - a)) / (b - a);
    else out[t] = (a >= 0 ? x[a] : x[b]) as number;
  }
  return out;
}

/** Number of back-and-forth reversals of at least `h` px (zig-zag with hysteresis). */
function countSwings(values: readonly number[], h: number): number {
  let swings = 0;
  let dir = 0;
  let hi = values[0] as number;
  let lo = values[0] as number;
  for (const v of values) {
    if (dir >= 0) {
      if (v > hi) hi = v;
      if (hi - v >= h) {
        if (dir > 0) swings++;
        dir = -1;
        lo = v;
        continue;
      }
    }
    if (dir <= 0) {
      if (v < lo) lo = v;
      if (v - lo >= h) {
        if (dir < 0) swings++;
        dir = 1;
        hi = v;
      }
    }
  }
  return swings;
}

/** Angle swept around a circle fitted to the path (Kasa fit, refitted without the three worst points). */
function sweptAngle(x: readonly number[], y: readonly number[]): number {
  let use = x.map((_, i) => i);
  let cx = 0;
  let cy = 0;
  for (let pass = 0; pass < 2; pass++) {
    // Least squares for x^2 + y^2 + D x + E y + F = 0.
    const m = new Float64Array(9);
    const rhs = new Float64Array(3);
    for (const i of use) {
      const xi = x[i] as number;
      const yi = y[i] as number;
      const row = [xi, yi, 1];
      const z = -(xi * xi + yi * yi);
      for (let a = 0; a < 3; a++) {
        rhs[a] = (rhs[a] as number) + (row[a] as number) * z;
        for (let b = 0; b < 3; b++)
          m[3 * a + b] = (m[3 * a + b] as number) + (row[a] as number) * (row[b] as number);
      }
    }
    const sol = solveSym3(m, rhs);
    cx = -sol[0] / 2;
    cy = -sol[1] / 2;
    const rad = Math.sqrt(Math.max(0, cx * cx + cy * cy - sol[2]));
    if (pass === 0) {
      const res = use.map(
        (i) => [i, Math.abs(Math.hypot((x[i] as number) - cx, (y[i] as number) - cy) - rad)] as const,
      );
      res.sort((a, b) => a[1] - b[1]);
      use = res.slice(0, Math.max(3, res.length - 3)).map(([i]) => i);
    }
  }
  let sweep = 0;
  for (let i = 0; i + 1 < x.length; i++) {
    const a0 = Math.atan2((y[i] as number) - cy, (x[i] as number) - cx);
    const a1 = Math.atan2((y[i + 1] as number) - cy, (x[i + 1] as number) - cx);
    let d = a1 - a0;
    while (d > Math.PI) d -= 2 * Math.PI;
    while (d < -Math.PI) d += 2 * Math.PI;
    sweep += d;
  }
  return Number.isFinite(sweep) ? sweep : 0;
}

function solveSym3(m: Float64Array, r: Float64Array): [number, number, number] {
  const a = [
    [m[0] as number, m[1] as number, m[2] as number, r[0] as number],
    [m[3] as number, m[4] as number, m[5] as number, r[1] as number],
    [m[6] as number, m[7] as number, m[8] as number, r[2] as number],
  ];
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let i = c + 1; i < 3; i++)
      if (Math.abs((a[i] as number[])[c] as number) > Math.abs((a[p] as number[])[c] as number)) p = i;
    [a[c], a[p]] = [a[p] as number[], a[c] as number[]];
    const piv = (a[c] as number[])[c] as number;
    if (Math.abs(piv) < 1e-12) return [0, 0, 0];
    for (let i = 0; i < 3; i++) {
      if (i === c) continue;
      const f = ((a[i] as number[])[c] as number) / piv;
      for (let k = c; k < 4; k++)
        (a[i] as number[])[k] = ((a[i] as number[])[k] as number) - f * ((a[c] as number[])[k] as number);
    }
  }
  return [0, 1, 2].map((i) => ((a[i] as number[])[3] as number) / ((a[i] as number[])[i] as number)) as [
    number,
    number,
    number,
  ];
}

const DIRECTIONS: Partial<Record<MotionKind, [number, number]>> = {
  left: [-1, 0],
  right: [1, 0],
  up: [0, -1],
  down: [0, 1],
  'up-left': [-1, -1],
  'up-right': [1, -1],
  'down-left': [-1, 1],
  'down-right': [1, 1],
  fall: [0, 1],
};

export function checkMotion(track: Track, expected: MotionKind, th: OracleThresholds): MotionCheck {
  const scale = Math.min(track.height, track.width) / 64;
  const { x, y } = filledPath(track);
  const T = track.frames - 1;
  const travel: [number, number] = [theilSen(x) * T, theilSen(y) * T];
  // Teleports (1-2 frames away and back) removed first: a jump is not a bounce.
  const swings = countSwings(despike(x, y, th.spike * scale), th.wallSwing * scale);
  const sweep = sweptAngle(x, y);
  const minTravel = th.minTravel * scale;
  let ratio: number;
  const family = motionFamily(expected);
  const dir = DIRECTIONS[expected];
  if (dir) {
    // Direction within `directionAngle` of the prompt's, and enough travel.
    const len = Math.hypot(travel[0], travel[1]);
    const dn = Math.hypot(dir[0], dir[1]);
    const cos = len > 0 ? (travel[0] * dir[0] + travel[1] * dir[1]) / (len * dn) : -1;
    const angle = Math.acos(Math.max(-1, Math.min(1, cos)));
    ratio = Math.max(angle / th.directionAngle, minTravel / Math.max(len, 1e-9));
  } else if (family === 'bounce' || family === 'arc') {
    const sign = expected.endsWith('right') ? 1 : -1;
    ratio = minTravel / Math.max(sign * travel[0], 1e-9);
    if (ratio < 0) ratio = Infinity;
  } else if (family === 'walls') {
    ratio = swings >= 1 ? 0.5 : 2;
  } else {
    const sign = expected === 'orbit-cw' ? 1 : -1;
    const s = sign * sweep;
    ratio = s > 0 ? th.minSweep / s : Infinity;
  }
  const score = scoreFromRatio(ratio);
  return { expected, ok: ratio < 1, score, travel, swings, sweep };
}

export function assessPromptAdherence(
  video: Video,
  track: Track,
  prompt: string | PromptSpec,
  th: OracleThresholds,
): PromptAdherenceReport {
  const said = typeof prompt === 'string' ? parsePrompt(prompt) : prompt;
  if (!said || typeof said !== 'object')
    throw new InvalidArgumentError('assessPromptAdherence: prompt must be a string or a PromptSpec');
  const colour = checkColour(track, said.colour);
  const shape = checkShape(video, track, said.shape);
  const size = checkSize(track, said.size);
  const motion = checkMotion(track, said.motion, th);
  const ok = colour.ok && shape.ok && size.ok && motion.ok;
  return {
    score: Math.min(colour.score, shape.score, size.score, motion.score),
    label: ok ? 1 : 0,
    colour,
    shape,
    size,
    motion,
  };
}
