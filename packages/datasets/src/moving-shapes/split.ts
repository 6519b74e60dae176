/**
 * The compositional split: one in eight colour x shape x motion combinations is held out for the test
 * split. The rule (colour + 2 shape + 3 motion) mod 8 = 0 on vocabulary indices keeps every colour,
 * shape and motion, and every pair of them, in training: for a fixed (shape, motion) exactly one colour
 * of eight is held out, for a fixed (colour, motion) at most two shapes of six, for a fixed
 * (colour, shape) two motions of sixteen. A test prompt is therefore new as a whole, never in its parts.
 */
import { COLOURS, type ColourName, MOTIONS, type MotionKind, SHAPES, type ShapeName } from './vocabulary.js';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export const HELD_OUT_MODULUS = 8;

/** True when this combination appears only in the test split. */
export function isHeldOutCombination(colour: ColourName, shape: ShapeName, motion: MotionKind): boolean {
  const c = COLOURS.indexOf(colour);
  const s = SHAPES.indexOf(shape);
  const m = MOTIONS.indexOf(motion);
  return (c + 2 * s + 3 * m) % HELD_OUT_MODULUS === 0;
}

/** All combinations of one side of the split. */
export function combinations(
  heldOut: boolean,
): Array<{ colour: ColourName; shape: ShapeName; motion: MotionKind }> {
  const out: Array<{ colour: ColourName; shape: ShapeName; motion: MotionKind }> = [];
  for (const colour of COLOURS) {
    for (const shape of SHAPES) {
      for (const motion of MOTIONS) {
        if (isHeldOutCombination(colour, shape, motion) === heldOut) out.push({ colour, shape, motion });
      }
    }
  }
  return out;
}
