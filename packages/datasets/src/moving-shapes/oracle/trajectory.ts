/**
 * Trajectory models: the two shapes good motion takes in this world, fitted to the whole path so that
 * measurement noise averages out over the clip instead of being amplified by finite differences (a
 * hard-edged square's centroid is only known to +-0.5 px per frame: its second differences are as
 * large as a real change of speed).
 *
 * - ballistic: x a line in time, y a parabola (constant velocity, gravity pulls down and nothing
 *   pushes sideways), each restarted at every recognised hit on that axis with y's curvature shared
 *   across the pieces (a bounce's hops all fall with the same gravity). Lines, diagonals, falls, arcs,
 *   bounces and wall passes are all of this form. Leaving x no curvature matters: a curvature and a
 *   change of speed look alike over a few frames, and a hard edge's quantisation error (a sawtooth of
 *   +-0.5 px when the speed is near a whole number of pixels per frame) is fitted by the two together.
 * - orbit: uniform circular motion, a circle fitted to the path and the arc length travelled along it
 *   linear in time.
 *
 * A model is a list of series (x and y for ballistic, the arc length for an orbit), each a set of
 * frames, values in pixels, the design matrix of the fit, and where and how a change of speed would
 * show in it; kinks.ts asks whether one fits the path better.
 */
import { leastSquares } from './least-squares.js';
import type { Axis, Reflections } from './reflections.js';

export interface Series {
  /** Frames used (the object present, in a piece with at least 3 such frames). */
  frames: number[];
  /** Values at those frames, in pixels. */
  values: number[];
  /** One row of the design matrix per frame. */
  design: number[][];
  /**
   * The extra columns a change of speed at frame f adds (the first one's coefficient is the velocity
   * jump), or undefined when this series cannot tell one at f apart from a hit or from noise.
   */
  ramp: (f: number) => number[][] | undefined;
}

/** Frames a kink needs on each side (fewer, and a hard edge's +-0.5 px can look like one). */
export const KINK_SIDE = 3;

function count(frames: readonly number[], keep: (t: number) => boolean): number {
  let n = 0;
  for (const t of frames) if (keep(t)) n++;
  return n;
}

export interface TrajectoryModel {
  kind: 'ballistic' | 'orbit';
  series: Series[];
  /** Residual sum of squares and degrees of freedom outside the series (an orbit's distance across its circle). */
  extraRss: number;
  extraDof: number;
  /** Residual standard deviation per coordinate (px), after the fit. */
  residualScale: number;
  /** Orbit: radius (px) and swept angle (radians, positive clockwise on screen). */
  radius?: number;
  sweep?: number;
}

/** Residual sum of squares and degrees of freedom of every series, fitted as designed. */
function residuals(series: readonly Series[]): { rss: number; dof: number } {
  let rss = 0;
  let dof = 0;
  for (const s of series) {
    const fit = leastSquares(s.design, s.values);
    if (!fit) continue;
    rss += fit.rss;
    dof += s.values.length - (s.design[0]?.length ?? 0);
  }
  return { rss, dof };
}

/** Pieces of frames 0..F-1 between `breaks`, keeping the present frames of pieces with >= 3 of them. */
function pieces(F: number, breaks: readonly number[], present: readonly boolean[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const edges = [0, ...breaks.filter((b) => b > 0 && b < F), F];
  for (let i = 0; i + 1 < edges.length; i++) {
    const s = edges[i] as number;
    const e = (edges[i + 1] as number) - 1;
    let n = 0;
    for (let t = s; t <= e; t++) if (present[t]) n++;
    if (n >= 3) out.push([s, e]);
  }
  return out;
}

/**
 * One axis of the ballistic model. x: the pieces between hits on the side walls share one speed, their
 * direction alternating (an elastic reflection keeps the speed), and a change of speed at f carries on
 * into the later pieces. y: each piece (hop) has its own velocity and all share one curvature (gravity);
 * a change of speed is looked for inside one piece.
 */
function ballisticSeries(
  values: readonly number[],
  breaks: readonly number[],
  ambiguous: readonly number[],
  present: readonly boolean[],
  axis: Axis,
): Series {
  const F = values.length;
  const elastic = axis === 'x';
  const curved = !elastic;
  const used = present.map((p, t) => p && !ambiguous.includes(t));
  const segments = pieces(F, breaks, used);
  const mid = (F - 1) / 2;
  const frames: number[] = [];
  const vals: number[] = [];
  const piece: number[] = [];
  segments.forEach(([a, b], j) => {
    for (let t = a; t <= b; t++) {
      if (!used[t]) continue;
      frames.push(t);
      vals.push(values[t] as number);
      piece.push(j);
    }
  });
  const J = segments.length;
  const centre = segments.map(([a, b]) => (a + b) / 2);
  // Direction of each piece (elastic): the sign of its travel.
  const sign = segments.map((_, j) => {
    const idx = piece.flatMap((p, i) => (p === j ? [i] : []));
    const first = vals[idx[0] as number] as number;
    const last = vals[idx[idx.length - 1] as number] as number;
    return last >= first ? 1 : -1;
  });
  const slopes = elastic ? 1 : J;
  const design = frames.map((t, i) => {
    const j = piece[i] as number;
    const row = new Array<number>(J + slopes + (curved ? 1 : 0)).fill(0);
    row[j] = 1;
    if (elastic) row[J] = (sign[j] as number) * (t - (centre[j] as number));
    else row[J + j] = t - (centre[j] as number);
    // Shared curvature; centred on the clip so the column stays well conditioned.
    if (curved) row[J + slopes] = ((t - mid) * (t - mid)) / F;
    return row;
  });
  const ramp = (f: number): number[][] | undefined => {
    const j = segments.findIndex(([a, b]) => f >= a && f <= b);
    if (j < 0) return undefined;
    const inPiece = (t: number) =>
      t >= (segments[j] as [number, number])[0] && t <= (segments[j] as [number, number])[1];
    if (elastic) {
      // Two frames of the piece before f (else it is a change at the hit), enough frames either side.
      if (count(frames, (t) => inPiece(t) && t < f) < 2) return undefined;
      if (count(frames, (t) => t < f) < KINK_SIDE || count(frames, (t) => t > f) < KINK_SIDE)
        return undefined;
      return [
        frames.map((t, i) => {
          const p = piece[i] as number;
          const s = sign[p] as number;
          return p < j ? 0 : p === j ? s * Math.max(0, t - f) : s * (t - (centre[p] as number));
        }),
      ];
    }
    if (count(frames, (t) => inPiece(t) && t < f) < KINK_SIDE) return undefined;
    if (count(frames, (t) => inPiece(t) && t > f) < KINK_SIDE) return undefined;
    const after = frames.map((t) => (inPiece(t) ? Math.max(0, t - f) : 0));
    // Time runs k times faster after a change of speed: velocity x k, and gravity x k^2, which the
    // second column lets the piece have after f.
    return curved ? [after, after.map((u) => (u * u) / F)] : [after];
  };
  return { frames, values: vals, design, ramp };
}

/** A line in x and a parabola in y, restarted at `reflections.breaks`, without the frames it finds ambiguous. */
export function fitBallistic(
  path: Record<Axis, readonly number[]>,
  reflections: Pick<Reflections, 'breaks' | 'ambiguous'>,
  present: readonly boolean[],
): TrajectoryModel {
  const series = (['x', 'y'] as const).map((axis) =>
    ballisticSeries(path[axis], reflections.breaks[axis], reflections.ambiguous[axis], present, axis),
  );
  const { rss, dof } = residuals(series);
  return {
    kind: 'ballistic',
    series,
    extraRss: 0,
    extraDof: 0,
    residualScale: dof > 0 ? Math.sqrt(rss / dof) : Infinity,
  };
}

/** Circle through the points (Kasa: least squares on x^2 + y^2 + D x + E y + G = 0). */
export function fitCircle(
  xs: readonly number[],
  ys: readonly number[],
): { cx: number; cy: number; radius: number } | undefined {
  const fit = leastSquares(
    xs.map((x, i) => [x, ys[i] as number, 1]),
    xs.map((x, i) => -(x * x + (ys[i] as number) ** 2)),
  );
  if (!fit) return undefined;
  const [D, E, G] = fit.beta as [number, number, number];
  const cx = -D / 2;
  const cy = -E / 2;
  const r2 = cx * cx + cy * cy - G;
  return r2 > 0 ? { cx, cy, radius: Math.sqrt(r2) } : undefined;
}

/** Angle around (cx, cy) of each point, unwrapped (positive = clockwise on screen, y down). */
export function unwrappedAngles(
  xs: readonly number[],
  ys: readonly number[],
  cx: number,
  cy: number,
): number[] {
  const out: number[] = [];
  let prev = 0;
  xs.forEach((x, i) => {
    let a = Math.atan2((ys[i] as number) - cy, x - cx);
    if (i > 0) {
      while (a - prev > Math.PI) a -= 2 * Math.PI;
      while (a - prev < -Math.PI) a += 2 * Math.PI;
    }
    out.push(a);
    prev = a;
  });
  return out;
}

export function fitOrbit(
  path: Record<Axis, readonly number[]>,
  present: readonly boolean[],
): TrajectoryModel {
  const frames = present.flatMap((p, t) => (p ? [t] : []));
  const xs = frames.map((t) => path.x[t] as number);
  const ys = frames.map((t) => path.y[t] as number);
  const circle = frames.length >= 5 ? fitCircle(xs, ys) : undefined;
  if (!circle)
    return { kind: 'orbit', series: [], extraRss: 0, extraDof: 0, residualScale: Infinity, sweep: 0 };
  const { cx, cy, radius } = circle;
  const angles = unwrappedAngles(xs, ys, cx, cy);
  const arc = angles.map((a) => a * radius);
  const mid = (present.length - 1) / 2;
  const series: Series = {
    frames,
    values: arc,
    design: frames.map((t) => [1, t - mid]),
    ramp: (f) =>
      count(frames, (t) => t < f) >= KINK_SIDE && count(frames, (t) => t > f) >= KINK_SIDE
        ? [frames.map((t) => Math.max(0, t - f))]
        : undefined,
  };
  // Noise shows both along the circle (arc length about a uniform pace) and across it (radius).
  const along = residuals([series]);
  let radial = 0;
  xs.forEach((x, i) => {
    radial += (Math.hypot(x - cx, (ys[i] as number) - cy) - radius) ** 2;
  });
  const dof = along.dof + frames.length - 3;
  return {
    kind: 'orbit',
    series: [series],
    extraRss: radial,
    extraDof: frames.length - 3,
    residualScale: dof > 0 ? Math.sqrt((along.rss + radial) / dof) : Infinity,
    radius,
    sweep: (angles[angles.length - 1] as number) - (angles[0] as number),
  };
}
