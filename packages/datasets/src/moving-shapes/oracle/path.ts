/**
 * The centroid path of a track, as the physics checks read it: one point per frame, frames without the
 * object filled by linear interpolation (constant at the ends), and small robust statistics over it.
 */
import type { Track, TrackedFrame } from './track.js';

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : 0.5 * ((s[m - 1] as number) + (s[m] as number));
}

/** Centroids with missing frames filled by linear interpolation (constant at the ends). */
export function filledPath(track: Track): { x: number[]; y: number[] } {
  const F = track.frames;
  const x = new Array<number>(F).fill(Number.NaN);
  const y = new Array<number>(F).fill(Number.NaN);
  const present = track.perFrame.map((t) => t.present);
  const idx = present.flatMap((p, i) => (p ? [i] : []));
  if (idx.length === 0) return { x: x.fill(track.width / 2), y: y.fill(track.height / 2) };
  for (let t = 0; t < F; t++) {
    const f = track.perFrame[t] as TrackedFrame;
    if (f.present) {
      x[t] = f.x;
      y[t] = f.y;
      continue;
    }
    let a = -1;
    let b = -1;
    for (const i of idx) {
      if (i < t) a = i;
      else if (b < 0 && i > t) b = i;
    }
    const fa = a >= 0 ? (track.perFrame[a] as TrackedFrame) : undefined;
    const fb = b >= 0 ? (track.perFrame[b] as TrackedFrame) : undefined;
    if (fa && fb) {
      const w = (t - a) / (b - a);
      x[t] = fa.x + w * (fb.x - fa.x);
      y[t] = fa.y + w * (fb.y - fa.y);
    } else {
      const g = (fa ?? fb) as TrackedFrame;
      x[t] = g.x;
      y[t] = g.y;
    }
  }
  return { x, y };
}

/** Pixels per pixel of the 64 x 64 canvas the thresholds are written for. */
export function canvasScale(track: Track): number {
  return Math.min(track.height, track.width) / 64;
}
