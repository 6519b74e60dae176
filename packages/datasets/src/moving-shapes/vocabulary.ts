/**
 * The words of the MovingShapes world: colours, shapes, sizes, motions and backgrounds. Every list is
 * ordered and frozen: indices are used by the compositional split and by `promptTokens`, so appending
 * is safe and reordering is a breaking change.
 */

/** An RGB colour in the renderer's range [-1, 1] per channel. */
export type Rgb = readonly [number, number, number];

/** sRGB bytes -> [-1, 1]. */
export function rgbFromBytes(r: number, g: number, b: number): Rgb {
  return [r / 127.5 - 1, g / 127.5 - 1, b / 127.5 - 1];
}

export const COLOURS = ['red', 'orange', 'yellow', 'green', 'cyan', 'blue', 'magenta', 'white'] as const;
export type ColourName = (typeof COLOURS)[number];

/**
 * Object colours: saturated and far apart (the closest pair, orange and yellow, is 0.78 apart in
 * [-1, 1] RGB) so that a blurred, noisy, slightly colour-shifted video still names them apart.
 */
export const COLOUR_RGB: Readonly<Record<ColourName, Rgb>> = {
  red: rgbFromBytes(230, 40, 40),
  orange: rgbFromBytes(255, 140, 0),
  yellow: rgbFromBytes(250, 235, 30),
  green: rgbFromBytes(40, 200, 60),
  cyan: rgbFromBytes(40, 220, 230),
  blue: rgbFromBytes(50, 90, 250),
  magenta: rgbFromBytes(230, 50, 220),
  white: rgbFromBytes(245, 245, 245),
};

/**
 * Shapes, all drawn with the same area for a given size (area = pi * r^2), so that size can be read
 * from the area alone. None of them rotates.
 */
export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'cross', 'rectangle'] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Sizes and their equal-area radius r in pixels on a 64 x 64 canvas (scaled with the canvas). */
export const SIZES = ['small', 'medium', 'large'] as const;
export type SizeName = (typeof SIZES)[number];
export const SIZE_RADIUS_64: Readonly<Record<SizeName, number>> = { small: 5, medium: 7, large: 9 };

/**
 * Motions. `family` groups the kinds whose physics is the same (the compositional split and the
 * contradiction used by the wrong-motion defect are defined on kinds).
 */
export const MOTIONS = [
  'left',
  'right',
  'up',
  'down',
  'up-left',
  'up-right',
  'down-left',
  'down-right',
  'bounce-right',
  'bounce-left',
  'walls',
  'fall',
  'arc-right',
  'arc-left',
  'orbit-cw',
  'orbit-ccw',
] as const;
export type MotionKind = (typeof MOTIONS)[number];

export type MotionFamily = 'linear' | 'bounce' | 'walls' | 'fall' | 'arc' | 'orbit';

export function motionFamily(kind: MotionKind): MotionFamily {
  if (kind.startsWith('bounce')) return 'bounce';
  if (kind.startsWith('arc')) return 'arc';
  if (kind.startsWith('orbit')) return 'orbit';
  if (kind === 'walls' || kind === 'fall') return kind;
  return 'linear';
}

/** The phrase each motion is written as in a prompt. */
export const MOTION_PHRASES: Readonly<Record<MotionKind, string>> = {
  left: 'moving left',
  right: 'moving right',
  up: 'moving up',
  down: 'moving down',
  'up-left': 'moving up and to the left',
  'up-right': 'moving up and to the right',
  'down-left': 'moving down and to the left',
  'down-right': 'moving down and to the right',
  'bounce-right': 'bouncing left to right',
  'bounce-left': 'bouncing right to left',
  walls: 'bouncing between the walls',
  fall: 'falling',
  'arc-right': 'arcing left to right',
  'arc-left': 'arcing right to left',
  'orbit-cw': 'orbiting clockwise',
  'orbit-ccw': 'orbiting counterclockwise',
};

/**
 * The motion a wrong-motion defect draws instead: the same family in the opposite direction, or, for
 * the two kinds without a direction, the plainest contradiction (walls -> a straight pass with no
 * bounce, falling -> rising).
 */
export const CONTRADICTING_MOTION: Readonly<Record<MotionKind, MotionKind>> = {
  left: 'right',
  right: 'left',
  up: 'down',
  down: 'up',
  'up-left': 'down-right',
  'up-right': 'down-left',
  'down-left': 'up-right',
  'down-right': 'up-left',
  'bounce-right': 'bounce-left',
  'bounce-left': 'bounce-right',
  walls: 'right',
  fall: 'up',
  'arc-right': 'arc-left',
  'arc-left': 'arc-right',
  'orbit-cw': 'orbit-ccw',
  'orbit-ccw': 'orbit-cw',
};

/** Background colours: dark, so that every object colour stands out (contrast >= 1.2 in [-1, 1] RGB). */
export const BACKGROUNDS = ['black', 'charcoal', 'navy', 'forest', 'maroon'] as const;
export type BackgroundName = (typeof BACKGROUNDS)[number];
export const BACKGROUND_RGB: Readonly<Record<BackgroundName, Rgb>> = {
  black: rgbFromBytes(12, 12, 14),
  charcoal: rgbFromBytes(48, 48, 52),
  navy: rgbFromBytes(14, 20, 62),
  forest: rgbFromBytes(14, 46, 26),
  maroon: rgbFromBytes(58, 16, 22),
};

/** A background: one colour, or a linear gradient between two at an angle (radians, 0 = left to right). */
export type Background =
  | { kind: 'solid'; colour: BackgroundName }
  | { kind: 'gradient'; from: BackgroundName; to: BackgroundName; angle: number };

export function isColourName(v: unknown): v is ColourName {
  return typeof v === 'string' && (COLOURS as readonly string[]).includes(v);
}
export function isShapeName(v: unknown): v is ShapeName {
  return typeof v === 'string' && (SHAPES as readonly string[]).includes(v);
}
export function isSizeName(v: unknown): v is SizeName {
  return typeof v === 'string' && (SIZES as readonly string[]).includes(v);
}
export function isMotionKind(v: unknown): v is MotionKind {
  return typeof v === 'string' && (MOTIONS as readonly string[]).includes(v);
}
