/**
 * Shape geometry for the renderer and the oracle: a signed distance (in pixels, negative inside) from a
 * point given relative to the shape's area centroid, and the shape's extent around that centroid.
 * Every shape has area pi * r^2 for its size r, so size can be read from area whatever the shape.
 */
import type { ShapeName } from './vocabulary.js';

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT3 = Math.sqrt(3);
const INV_SQRT2 = Math.SQRT1_2;

/** Half side of the equal-area square, per unit r. */
const SQUARE_HALF = SQRT_PI / 2;
/** 2:1 rectangle: half width and half height per unit r (area 2h^2 = pi r^2). */
const RECT_HALF_H = Math.sqrt(Math.PI / 2) / 2;
const RECT_HALF_W = 2 * RECT_HALF_H;
/** Diamond (square on its corner): half diagonal per unit r. */
const DIAMOND_HALF = SQUARE_HALF * Math.SQRT2;
/** Equilateral triangle, apex up: side and height per unit r (area sqrt(3)/4 s^2 = pi r^2). */
const TRI_SIDE = Math.sqrt((4 * Math.PI) / SQRT3);
const TRI_HEIGHT = (TRI_SIDE * SQRT3) / 2;
/** Plus sign whose arms are one third of its span: span 3w, area 5w^2 = pi r^2. */
const CROSS_ARM = Math.sqrt(Math.PI / 5);
const CROSS_HALF_SPAN = 1.5 * CROSS_ARM;
const CROSS_HALF_ARM = 0.5 * CROSS_ARM;

/** Distances from the centroid to the shape's bounding box, in pixels. */
export interface Extent {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export function shapeExtent(shape: ShapeName, r: number): Extent {
  switch (shape) {
    case 'circle':
      return { left: r, right: r, top: r, bottom: r };
    case 'square':
      return sym(SQUARE_HALF * r, SQUARE_HALF * r);
    case 'rectangle':
      return sym(RECT_HALF_W * r, RECT_HALF_H * r);
    case 'diamond':
      return sym(DIAMOND_HALF * r, DIAMOND_HALF * r);
    case 'cross':
      return sym(CROSS_HALF_SPAN * r, CROSS_HALF_SPAN * r);
    case 'triangle':
      return {
        left: (TRI_SIDE / 2) * r,
        right: (TRI_SIDE / 2) * r,
        top: ((2 * TRI_HEIGHT) / 3) * r,
        bottom: (TRI_HEIGHT / 3) * r,
      };
  }
}

function sym(hx: number, hy: number): Extent {
  return { left: hx, right: hx, top: hy, bottom: hy };
}

function box(u: number, v: number, bx: number, by: number): number {
  const qx = Math.abs(u) - bx;
  const qy = Math.abs(v) - by;
  const ox = Math.max(qx, 0);
  const oy = Math.max(qy, 0);
  const inside = Math.min(Math.max(qx, qy), 0);
  return Math.sqrt(ox * ox + oy * oy) + inside;
}

/**
 * Signed distance from (u, v) (pixels, relative to the centroid, y down) to a shape of size r.
 * Polygons use the maximum of their edge distances: exact inside and along edges, and it keeps corners
 * sharp, which is what pixel coverage of a sharp polygon needs.
 */
export function shapeDistance(shape: ShapeName, u: number, v: number, r: number): number {
  switch (shape) {
    case 'circle':
      return Math.sqrt(u * u + v * v) - r;
    case 'square':
      return box(u, v, SQUARE_HALF * r, SQUARE_HALF * r);
    case 'rectangle':
      return box(u, v, RECT_HALF_W * r, RECT_HALF_H * r);
    case 'diamond':
      return (Math.abs(u) + Math.abs(v) - DIAMOND_HALF * r) * INV_SQRT2;
    case 'cross':
      return Math.min(
        box(u, v, CROSS_HALF_SPAN * r, CROSS_HALF_ARM * r),
        box(u, v, CROSS_HALF_ARM * r, CROSS_HALF_SPAN * r),
      );
    case 'triangle': {
      const h = TRI_HEIGHT * r;
      const base = v - h / 3;
      const w = v + (2 * h) / 3;
      const left = -0.5 * SQRT3 * u - 0.5 * w;
      const right = 0.5 * SQRT3 * u - 0.5 * w;
      return Math.max(base, left, right);
    }
  }
}

/**
 * Fraction of the pixel centred at (u, v) that the shape covers: a linear ramp one pixel wide across
 * the boundary, the box-filter coverage of a straight edge. `sx`, `sy` stretch the shape (deformation).
 */
export function shapeCoverage(shape: ShapeName, u: number, v: number, r: number, sx = 1, sy = 1): number {
  const d = shapeDistance(shape, u / sx, v / sy, r) * Math.min(sx, sy);
  const c = 0.5 - d;
  return c <= 0 ? 0 : Math.min(c, 1);
}
