/**
 * Object tracking for the oracle, for any video in [-1, 1] RGB (rendered, degraded or generated):
 *
 * 1. background: per frame, a plane a + b x + c y per channel fitted to the pixels, refitted three times
 *    without the pixels far from it (the object covers a few per cent of the frame; a flat or linear
 *    gradient background is fitted exactly);
 * 2. object: pixels whose colour distance to the background exceeds max(0.3, 0.4 x the frame's largest
 *    distance), grouped into 4-connected components; the component with the largest summed distance;
 * 3. soft mask: every pixel near that component is projected on the object's colour direction and
 *    divided by the object's contrast, giving a coverage alpha in [0, 1]. Blur moves alpha around but
 *    keeps its sum and its centre, so area and centroid survive a VAE round trip.
 */
import { assertVideo, type Video } from '../video.js';

/** What the tracker measured in one frame. */
export interface TrackedFrame {
  present: boolean;
  /** Alpha-weighted centroid, pixels. */
  x: number;
  y: number;
  /** Sum of alpha (pixels^2). */
  area: number;
  /** Central second moments of alpha. */
  cxx: number;
  cyy: number;
  cxy: number;
  /** Bounding box of alpha >= 0.5, in pixel edges: [xmin, xmax) x [ymin, ymax). */
  bbox: [number, number, number, number];
  /** Colour distance of the object's core from the background (the top quarter of its pixels). */
  contrast: number;
  /** Mean colour of the object's core and the fitted background at the centroid. */
  colour: [number, number, number];
  background: [number, number, number];
  /** Unit colour direction object - background. */
  direction: [number, number, number];
  /** Background plane per channel: value = p[0] + p[1] x + p[2] y (x, y pixel centres). */
  plane: [number, number, number, number, number, number, number, number, number];
}

export interface Track {
  frames: number;
  height: number;
  width: number;
  perFrame: TrackedFrame[];
}

function solve3(m: Float64Array, rhs: Float64Array): [number, number, number] {
  // m is symmetric 3x3 [a b c; b d e; c e f]; Cramer's rule, fine for this well-conditioned system.
  const a = m[0] as number;
  const b = m[1] as number;
  const c = m[2] as number;
  const d = m[4] as number;
  const e = m[5] as number;
  const f = m[8] as number;
  const det = a * (d * f - e * e) - b * (b * f - e * c) + c * (b * e - d * c);
  if (Math.abs(det) < 1e-12) return [(rhs[0] as number) / Math.max(a, 1e-12), 0, 0];
  const r0 = rhs[0] as number;
  const r1 = rhs[1] as number;
  const r2 = rhs[2] as number;
  const x0 = (r0 * (d * f - e * e) - b * (r1 * f - e * r2) + c * (r1 * e - d * r2)) / det;
  const x1 = (a * (r1 * f - e * r2) - r0 * (b * f - e * c) + c * (b * r2 - r1 * c)) / det;
  const x2 = (a * (d * r2 - r1 * e) - b * (b * r2 - r1 * c) + r0 * (b * e - d * c)) / det;
  return [x0, x1, x2];
}

/** Least-squares plane per channel over the pixels of the every-other-pixel grid that `keep` marks. */
function fitPlane(frame: Float32Array, H: number, W: number, keep: Uint8Array): TrackedFrame['plane'] {
  const m = new Float64Array(9);
  const rhs = [new Float64Array(3), new Float64Array(3), new Float64Array(3)] as const;
  let s1 = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  const r = rhs[0];
  const g = rhs[1];
  const b = rhs[2];
  let k = 0;
  for (let i = 0; i < H; i += 2) {
    const y = i + 0.5;
    for (let j = 0; j < W; j += 2, k++) {
      if (!keep[k]) continue;
      const x = j + 0.5;
      s1++;
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
      syy += y * y;
      const p = 3 * (i * W + j);
      const vr = frame[p] as number;
      const vg = frame[p + 1] as number;
      const vb = frame[p + 2] as number;
      r[0] = (r[0] as number) + vr;
      r[1] = (r[1] as number) + vr * x;
      r[2] = (r[2] as number) + vr * y;
      g[0] = (g[0] as number) + vg;
      g[1] = (g[1] as number) + vg * x;
      g[2] = (g[2] as number) + vg * y;
      b[0] = (b[0] as number) + vb;
      b[1] = (b[1] as number) + vb * x;
      b[2] = (b[2] as number) + vb * y;
    }
  }
  m.set([s1, sx, sy, sx, sxx, sxy, sy, sxy, syy]);
  const pr = solve3(m, r);
  const pg = solve3(m, g);
  const pb = solve3(m, b);
  return [pr[0], pr[1], pr[2], pg[0], pg[1], pg[2], pb[0], pb[1], pb[2]];
}

/** Colour distance of each grid pixel to `plane` into `res`; marks in `keep` those within `cut`. Returns the count kept. */
function residuals(
  frame: Float32Array,
  H: number,
  W: number,
  plane: TrackedFrame['plane'],
  res: Float32Array,
  keep: Uint8Array,
  cut: number,
): number {
  let k = 0;
  let kept = 0;
  for (let i = 0; i < H; i += 2) {
    const y = i + 0.5;
    for (let j = 0; j < W; j += 2, k++) {
      const x = j + 0.5;
      const p = 3 * (i * W + j);
      const dr = (frame[p] as number) - (plane[0] + plane[1] * x + plane[2] * y);
      const dg = (frame[p + 1] as number) - (plane[3] + plane[4] * x + plane[5] * y);
      const db = (frame[p + 2] as number) - (plane[6] + plane[7] * x + plane[8] * y);
      const d = Math.sqrt(dr * dr + dg * dg + db * db);
      res[k] = d;
      const ok = d <= cut ? 1 : 0;
      keep[k] = ok;
      kept += ok;
    }
  }
  return kept;
}

/** The k-th smallest of values[0..n) (quickselect on a copy in `work`). */
function kthSmallest(values: Float32Array, n: number, k: number, work: Float32Array): number {
  work.set(values.subarray(0, n));
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = work[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((work[i] as number) < pivot) i++;
      while ((work[j] as number) > pivot) j--;
      if (i <= j) {
        const t = work[i] as number;
        work[i] = work[j] as number;
        work[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return work[k] as number;
}

/**
 * Background planes, frame by frame. The first frame (and any frame whose background jumped) gets the
 * full robust fit: all pixels, then twice without those beyond max(0.08, 3 x the median residual),
 * which also sets the clip's noise cut. Later frames start from the previous frame's plane: two fits,
 * each without the pixels beyond that cut.
 */
class BackgroundFitter {
  private readonly res: Float32Array;
  private readonly keep: Uint8Array;
  private readonly work: Float32Array;
  private readonly n: number;
  private previous: TrackedFrame['plane'] | undefined;
  private cut = 0.08;

  constructor(
    private readonly H: number,
    private readonly W: number,
  ) {
    this.n = Math.ceil(H / 2) * Math.ceil(W / 2);
    this.res = new Float32Array(this.n);
    this.keep = new Uint8Array(this.n);
    this.work = new Float32Array(this.n);
  }

  fit(frame: Float32Array): TrackedFrame['plane'] {
    const { H, W, res, keep, n } = this;
    if (this.previous) {
      let plane = this.previous;
      let ok = true;
      for (let pass = 0; pass < 2 && ok; pass++) {
        ok = residuals(frame, H, W, plane, res, keep, this.cut) >= n / 2;
        if (ok) plane = fitPlane(frame, H, W, keep);
      }
      if (ok) {
        this.previous = plane;
        return plane;
      }
    }
    keep.fill(1);
    let plane = fitPlane(frame, H, W, keep);
    for (let pass = 0; pass < 2; pass++) {
      residuals(frame, H, W, plane, res, keep, Infinity);
      this.cut = Math.max(0.08, 3 * kthSmallest(res, n, n >> 1, this.work));
      for (let k = 0; k < n; k++) keep[k] = (res[k] as number) <= this.cut ? 1 : 0;
      plane = fitPlane(frame, H, W, keep);
    }
    this.previous = plane;
    return plane;
  }
}

/** Alpha below this is treated as background. */
const ALPHA_FLOOR = 0.1;

/**
 * Projection of (pixel - background) on the colour direction `u` into `proj` for the box grown by one
 * pixel, and its [1 2 1]^2 / 16 smoothing into `smooth` for the box itself (edges of the image clamped).
 */
function smoothProjection(
  frame: Float32Array,
  W: number,
  H: number,
  pl: TrackedFrame['plane'],
  u: readonly [number, number, number],
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  proj: Float32Array,
  smooth: Float32Array,
): void {
  const [ur, ug, ub] = u;
  const gy0 = Math.max(0, y0 - 1);
  const gy1 = Math.min(H - 1, y1 + 1);
  const gx0 = Math.max(0, x0 - 1);
  const gx1 = Math.min(W - 1, x1 + 1);
  for (let i = gy0; i <= gy1; i++) {
    const y = i + 0.5;
    for (let j = gx0; j <= gx1; j++) {
      const x = j + 0.5;
      const p = i * W + j;
      proj[p] =
        ur * ((frame[3 * p] as number) - (pl[0] + pl[1] * x + pl[2] * y)) +
        ug * ((frame[3 * p + 1] as number) - (pl[3] + pl[4] * x + pl[5] * y)) +
        ub * ((frame[3 * p + 2] as number) - (pl[6] + pl[7] * x + pl[8] * y));
    }
  }
  for (let i = y0; i <= y1; i++) {
    const im = Math.max(gy0, i - 1);
    const ip = Math.min(gy1, i + 1);
    for (let j = x0; j <= x1; j++) {
      const jm = Math.max(gx0, j - 1);
      const jp = Math.min(gx1, j + 1);
      const row = (r: number) =>
        (proj[r * W + jm] as number) + 2 * (proj[r * W + j] as number) + (proj[r * W + jp] as number);
      smooth[i * W + j] = (row(im) + 2 * row(i) + row(ip)) / 16;
    }
  }
}

/** Tracks the single object of a MovingShapes-like video, frame by frame. */
export function trackObject(video: Video): Track {
  assertVideo('trackObject: video', video);
  const { frames: F, height: H, width: W } = video;
  const N = H * W;
  const dist2 = new Float32Array(N);
  const label = new Int32Array(N);
  const stack = new Int32Array(N);
  const members = new Int32Array(N);
  const proj = new Float32Array(N);
  const smooth = new Float32Array(N);
  const background = new BackgroundFitter(H, W);
  const perFrame: TrackedFrame[] = [];
  for (let f = 0; f < F; f++) {
    const frame = video.data.subarray(f * N * 3, (f + 1) * N * 3);
    const pl = background.fit(frame);
    // Squared colour distance to the background.
    let max2 = 0;
    for (let i = 0; i < H; i++) {
      const y = i + 0.5;
      const br = pl[0] + pl[2] * y;
      const bg = pl[3] + pl[5] * y;
      const bb = pl[6] + pl[8] * y;
      for (let j = 0; j < W; j++) {
        const x = j + 0.5;
        const p = i * W + j;
        const dr = (frame[3 * p] as number) - (br + pl[1] * x);
        const dg = (frame[3 * p + 1] as number) - (bg + pl[4] * x);
        const db = (frame[3 * p + 2] as number) - (bb + pl[7] * x);
        const d2 = dr * dr + dg * dg + db * db;
        dist2[p] = d2;
        if (d2 > max2) max2 = d2;
      }
    }
    const tau = Math.max(0.3, 0.4 * Math.sqrt(max2));
    const tau2 = tau * tau;
    // Connected components above tau (pixels listed in `members`); keep the largest summed distance.
    label.fill(0);
    let bestStart = 0;
    let bestCount = 0;
    let bestSum = 0;
    let used = 0;
    let next = 0;
    for (let p = 0; p < N; p++) {
      if (label[p] !== 0 || (dist2[p] as number) <= tau2) continue;
      next++;
      const start = used;
      let top = 0;
      stack[top++] = p;
      label[p] = next;
      let sum = 0;
      while (top > 0) {
        const q = stack[--top] as number;
        members[used++] = q;
        sum += Math.sqrt(dist2[q] as number);
        const qi = (q / W) | 0;
        const qj = q - qi * W;
        if (qj > 0 && label[q - 1] === 0 && (dist2[q - 1] as number) > tau2) {
          label[q - 1] = next;
          stack[top++] = q - 1;
        }
        if (qj < W - 1 && label[q + 1] === 0 && (dist2[q + 1] as number) > tau2) {
          label[q + 1] = next;
          stack[top++] = q + 1;
        }
        if (qi > 0 && label[q - W] === 0 && (dist2[q - W] as number) > tau2) {
          label[q - W] = next;
          stack[top++] = q - W;
        }
        if (qi < H - 1 && label[q + W] === 0 && (dist2[q + W] as number) > tau2) {
          label[q + W] = next;
          stack[top++] = q + W;
        }
      }
      if (sum > bestSum) {
        bestSum = sum;
        bestStart = start;
        bestCount = used - start;
      }
    }
    if (bestCount < 4) {
      perFrame.push(absent(pl));
      continue;
    }
    const best = label[members[bestStart] as number] as number;
    const comp = members.subarray(bestStart, bestStart + bestCount);
    // Colour direction (distance-weighted mean of pixel - background) and box of the component.
    let ur = 0;
    let ug = 0;
    let ub = 0;
    let i0 = H;
    let i1 = -1;
    let j0 = W;
    let j1 = -1;
    for (const p of comp) {
      const i = (p / W) | 0;
      const j = p - i * W;
      const x = j + 0.5;
      const y = i + 0.5;
      const w = Math.sqrt(dist2[p] as number);
      ur += w * ((frame[3 * p] as number) - (pl[0] + pl[1] * x + pl[2] * y));
      ug += w * ((frame[3 * p + 1] as number) - (pl[3] + pl[4] * x + pl[5] * y));
      ub += w * ((frame[3 * p + 2] as number) - (pl[6] + pl[7] * x + pl[8] * y));
      if (i < i0) i0 = i;
      if (i > i1) i1 = i;
      if (j < j0) j0 = j;
      if (j > j1) j1 = j;
    }
    const un = Math.sqrt(ur * ur + ug * ug + ub * ub) || 1;
    ur /= un;
    ug /= un;
    ub /= un;
    // Contrast: mean projection of the top quarter of the component's pixels.
    const compProj = new Float32Array(bestCount);
    comp.forEach((p, k) => {
      const i = (p / W) | 0;
      const j = p - i * W;
      const x = j + 0.5;
      const y = i + 0.5;
      compProj[k] =
        ur * ((frame[3 * p] as number) - (pl[0] + pl[1] * x + pl[2] * y)) +
        ug * ((frame[3 * p + 1] as number) - (pl[3] + pl[4] * x + pl[5] * y)) +
        ub * ((frame[3 * p + 2] as number) - (pl[6] + pl[7] * x + pl[8] * y));
    });
    compProj.sort().reverse();
    const topK = Math.max(3, Math.round(compProj.length / 4));
    const cut = compProj[Math.min(topK, compProj.length) - 1] as number;
    let contrast = 0;
    for (let k = 0; k < topK && k < compProj.length; k++) contrast += compProj[k] as number;
    contrast /= Math.min(topK, compProj.length);
    // Soft mask in the component's box grown by 3 px. The projection is smoothed with a [1 2 1]^2 / 16
    // kernel first: symmetric, so it moves neither centroid nor area, but it cuts the noise that leaks
    // through the alpha floor by a factor of ~2.7 (the centroid's jitter under noise 0.1 by about as much).
    const y0 = Math.max(0, i0 - 3);
    const y1 = Math.min(H - 1, i1 + 3);
    const x0 = Math.max(0, j0 - 3);
    const x1 = Math.min(W - 1, j1 + 3);
    smoothProjection(frame, W, H, pl, [ur, ug, ub], x0, x1, y0, y1, proj, smooth);
    let sa = 0;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let syy = 0;
    let sxy = 0;
    let cr = 0;
    let cg = 0;
    let cb = 0;
    let cn = 0;
    let bx0 = W;
    let bx1 = 0;
    let by0 = H;
    let by1 = 0;
    for (let i = y0; i <= y1; i++) {
      const y = i + 0.5;
      for (let j = x0; j <= x1; j++) {
        const x = j + 0.5;
        const p = i * W + j;
        let a = (smooth[p] as number) / contrast;
        if (a >= ALPHA_FLOOR) {
          if (a > 1) a = 1;
          sa += a;
          sx += a * x;
          sy += a * y;
          sxx += a * x * x;
          syy += a * y * y;
          sxy += a * x * y;
          if (a >= 0.5) {
            if (j < bx0) bx0 = j;
            if (j + 1 > bx1) bx1 = j + 1;
            if (i < by0) by0 = i;
            if (i + 1 > by1) by1 = i + 1;
          }
        }
        if (label[p] === best && (proj[p] as number) >= cut) {
          cr += frame[3 * p] as number;
          cg += frame[3 * p + 1] as number;
          cb += frame[3 * p + 2] as number;
          cn++;
        }
      }
    }
    const cx = sx / sa;
    const cy = sy / sa;
    perFrame.push({
      present: true,
      x: cx,
      y: cy,
      area: sa,
      cxx: sxx / sa - cx * cx,
      cyy: syy / sa - cy * cy,
      cxy: sxy / sa - cx * cy,
      bbox: bx1 > bx0 ? [bx0, bx1, by0, by1] : [j0, j1 + 1, i0, i1 + 1],
      contrast,
      colour: [cr / cn, cg / cn, cb / cn],
      background: [
        pl[0] + pl[1] * cx + pl[2] * cy,
        pl[3] + pl[4] * cx + pl[5] * cy,
        pl[6] + pl[7] * cx + pl[8] * cy,
      ],
      direction: [ur, ug, ub],
      plane: pl,
    });
  }
  return { frames: F, height: H, width: W, perFrame };
}

function absent(plane: TrackedFrame['plane']): TrackedFrame {
  return {
    present: false,
    x: Number.NaN,
    y: Number.NaN,
    area: 0,
    cxx: 0,
    cyy: 0,
    cxy: 0,
    bbox: [0, 0, 0, 0],
    contrast: 0,
    colour: [0, 0, 0],
    background: [plane[0], plane[3], plane[6]],
    direction: [0, 0, 0],
    plane,
  };
}

/**
 * The soft mask (alpha in [0, 1], 0 below the floor, smoothed as in tracking) of a tracked frame inside a
 * square window of half-size `half` around (cx, cy); [2 half, 2 half] row-major, window pixel (0, 0) is
 * image pixel (floor(cy) - half, floor(cx) - half). Outside the image alpha is 0.
 */
export function alphaWindow(
  video: Video,
  f: number,
  t: TrackedFrame,
  cx: number,
  cy: number,
  half: number,
): Float32Array {
  const { height: H, width: W } = video;
  const size = 2 * half;
  const out = new Float32Array(size * size);
  const frame = video.data.subarray(f * H * W * 3, (f + 1) * H * W * 3);
  const oi = Math.floor(cy) - half;
  const oj = Math.floor(cx) - half;
  const x0 = Math.max(0, oj);
  const x1 = Math.min(W - 1, oj + size - 1);
  const y0 = Math.max(0, oi);
  const y1 = Math.min(H - 1, oi + size - 1);
  if (x1 < x0 || y1 < y0) return out;
  const proj = new Float32Array(H * W);
  const smooth = new Float32Array(H * W);
  smoothProjection(frame, W, H, t.plane, t.direction, x0, x1, y0, y1, proj, smooth);
  for (let i = y0; i <= y1; i++) {
    for (let j = x0; j <= x1; j++) {
      let a = (smooth[i * W + j] as number) / t.contrast;
      if (a < ALPHA_FLOOR) a = 0;
      else if (a > 1) a = 1;
      out[(i - oi) * size + (j - oj)] = a;
    }
  }
  return out;
}
