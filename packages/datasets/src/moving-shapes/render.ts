/**
 * The MovingShapes rasteriser: a background (flat or a linear gradient) and one anti-aliased shape per
 * frame, in plain TypeScript on a Float32Array. The background is drawn once and copied into every
 * frame; the shape touches only its bounding box, so a 17 x 64 x 64 clip costs well under a millisecond.
 */
import { InvalidArgumentError } from '@prfl/tensor';
import { shapeDistance, shapeExtent } from './shapes.js';
import type { Video } from './video.js';
import { BACKGROUND_RGB, type Background, type Rgb, type ShapeName } from './vocabulary.js';

/** Where and how the shape is drawn in one frame. */
export interface FrameState {
  /** Centroid in pixels (x right, y down; pixel (i, j) has its centre at (j + 0.5, i + 0.5)). */
  x: number;
  y: number;
  /** Horizontal and vertical stretch (1 = undeformed). */
  sx: number;
  sy: number;
  /** Opacity: 1 draws the colour, 0 leaves the background (a flicker fades towards the background). */
  opacity: number;
}

/** Everything the renderer needs. */
export interface Scene {
  width: number;
  height: number;
  shape: ShapeName;
  /** Equal-area radius in pixels. */
  radius: number;
  colour: Rgb;
  background: Background;
  states: readonly FrameState[];
}

/** The background image [H, W, 3]. A gradient is linear in x and y, so the oracle can fit it with a plane. */
export function renderBackground(background: Background, width: number, height: number): Float32Array {
  const img = new Float32Array(width * height * 3);
  if (background.kind === 'solid') {
    const c = BACKGROUND_RGB[background.colour];
    for (let p = 0; p < width * height; p++) {
      img[3 * p] = c[0];
      img[3 * p + 1] = c[1];
      img[3 * p + 2] = c[2];
    }
    return img;
  }
  const a = BACKGROUND_RGB[background.from];
  const b = BACKGROUND_RGB[background.to];
  const ca = Math.cos(background.angle);
  const sa = Math.sin(background.angle);
  const span = Math.abs(width * ca) + Math.abs(height * sa);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const t = ((j + 0.5 - width / 2) * ca + (i + 0.5 - height / 2) * sa) / span + 0.5;
      const p = 3 * (i * width + j);
      img[p] = a[0] + (b[0] - a[0]) * t;
      img[p + 1] = a[1] + (b[1] - a[1]) * t;
      img[p + 2] = a[2] + (b[2] - a[2]) * t;
    }
  }
  return img;
}

/**
 * Renders a scene into a video (a new one, or `out` when its size matches: reuse it in tight loops).
 * Coverage is the signed distance turned into a one-pixel linear ramp: anti-aliased edges whose
 * coverage sums to the shape's area.
 */
export function renderScene(scene: Scene, out?: Video): Video {
  const { width: W, height: H, shape, radius, colour, states } = scene;
  const F = states.length;
  if (F === 0)
    throw new InvalidArgumentError('renderScene: scene.states is empty (need one state per frame)');
  const frameSize = W * H * 3;
  let video = out;
  if (!video || video.width !== W || video.height !== H || video.frames !== F) {
    video = { frames: F, height: H, width: W, data: new Float32Array(F * frameSize) };
  }
  const bg = renderBackground(scene.background, W, H);
  const ext = shapeExtent(shape, radius);
  const data = video.data;
  const [cr, cg, cb] = colour;
  for (let f = 0; f < F; f++) {
    const base = f * frameSize;
    data.set(bg, base);
    const s = states[f] as FrameState;
    if (!(s.opacity > 0)) continue;
    const sx = s.sx;
    const sy = s.sy;
    const scale = Math.min(sx, sy);
    const j0 = Math.max(0, Math.floor(s.x - ext.left * sx - 1));
    const j1 = Math.min(W - 1, Math.ceil(s.x + ext.right * sx + 1));
    const i0 = Math.max(0, Math.floor(s.y - ext.top * sy - 1));
    const i1 = Math.min(H - 1, Math.ceil(s.y + ext.bottom * sy + 1));
    for (let i = i0; i <= i1; i++) {
      const v = (i + 0.5 - s.y) / sy;
      for (let j = j0; j <= j1; j++) {
        const u = (j + 0.5 - s.x) / sx;
        let c = 0.5 - shapeDistance(shape, u, v, radius) * scale;
        if (c <= 0) continue;
        if (c > 1) c = 1;
        c *= s.opacity;
        const p = base + 3 * (i * W + j);
        data[p] = (data[p] as number) + (cr - (data[p] as number)) * c;
        data[p + 1] = (data[p + 1] as number) + (cg - (data[p + 1] as number)) * c;
        data[p + 2] = (data[p + 2] as number) + (cb - (data[p + 2] as number)) * c;
      }
    }
  }
  return video;
}
