/**
 * The second renderer's shapes, from their definitions rather than from src/moving-shapes/shapes.ts:
 * every shape has area pi r^2 and is placed by its area centroid (y down); polygons are vertex lists,
 * the cross is the union of two bars, the circle an ellipse once stretched. `inside` is the point test
 * a hard-edged rasteriser applies at pixel centres (and a supersampler at its sub-samples).
 */
import type { ShapeName } from '../../../src/moving-shapes/vocabulary.js';

export interface Outline {
  /** Point test in the shape's own frame (relative to the area centroid, unstretched). */
  inside: (u: number, v: number) => boolean;
  /** Half extents around the centroid: left, right, up, down (pixels). */
  left: number;
  right: number;
  up: number;
  down: number;
}

type Pt = readonly [number, number];

/** Convex polygon test: the point is on the inner side of every edge (vertices in any consistent order). */
function convex(vertices: readonly Pt[]): (u: number, v: number) => boolean {
  const n = vertices.length;
  const edges = vertices.map((a, i) => {
    const b = vertices[(i + 1) % n] as Pt;
    return [a[0], a[1], b[0] - a[0], b[1] - a[1]] as const;
  });
  // Orientation from the signed area, so either winding works.
  let area2 = 0;
  for (const [ax, ay, ex, ey] of edges) area2 += ax * (ay + ey) - (ax + ex) * ay;
  const s = area2 > 0 ? 1 : -1;
  return (u, v) => {
    for (const [ax, ay, ex, ey] of edges) if (s * (ex * (v - ay) - ey * (u - ax)) < 0) return false;
    return true;
  };
}

function extentOf(vertices: readonly Pt[]): Omit<Outline, 'inside'> {
  const xs = vertices.map((p) => p[0]);
  const ys = vertices.map((p) => p[1]);
  return { left: -Math.min(...xs), right: Math.max(...xs), up: -Math.min(...ys), down: Math.max(...ys) };
}

function polygon(vertices: readonly Pt[]): Outline {
  return { inside: convex(vertices), ...extentOf(vertices) };
}

export function outline(shape: ShapeName, r: number): Outline {
  const area = Math.PI * r * r;
  switch (shape) {
    case 'circle':
      return { inside: (u, v) => u * u + v * v <= r * r, left: r, right: r, up: r, down: r };
    case 'square': {
      const h = Math.sqrt(area) / 2;
      return polygon([
        [-h, -h],
        [h, -h],
        [h, h],
        [-h, h],
      ]);
    }
    case 'rectangle': {
      // Twice as wide as tall: 2 h^2 = area with h the height.
      const h = Math.sqrt(area / 2);
      return polygon([
        [-h, -h / 2],
        [h, -h / 2],
        [h, h / 2],
        [-h, h / 2],
      ]);
    }
    case 'diamond': {
      // A square of the same area on its corner: half diagonal = side / sqrt(2).
      const d = Math.sqrt(area) / Math.SQRT2;
      return polygon([
        [0, -d],
        [d, 0],
        [0, d],
        [-d, 0],
      ]);
    }
    case 'triangle': {
      // Equilateral, apex up; the centroid is a third of the height above the base.
      const side = Math.sqrt((4 * area) / Math.sqrt(3));
      const height = (side * Math.sqrt(3)) / 2;
      return polygon([
        [0, (-2 * height) / 3],
        [side / 2, height / 3],
        [-side / 2, height / 3],
      ]);
    }
    case 'cross': {
      // Plus sign: span 3 w, arm width w, area 5 w^2.
      const w = Math.sqrt(area / 5);
      const a = w / 2;
      const b = 1.5 * w;
      return {
        inside: (u, v) => (Math.abs(u) <= b && Math.abs(v) <= a) || (Math.abs(u) <= a && Math.abs(v) <= b),
        left: b,
        right: b,
        up: b,
        down: b,
      };
    }
  }
}
