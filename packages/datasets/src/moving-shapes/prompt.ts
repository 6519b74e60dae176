/**
 * The prompt grammar of MovingShapes:
 *
 *   prompt := article [size] colour shape motion-phrase
 *   article := "a" | "an"          (by the next word's first letter)
 *   size    := "small" | "large"   (medium is left unsaid)
 *
 * e.g. "a red circle bouncing left to right", "a small white cross orbiting clockwise".
 * `formatPrompt` and `parsePrompt` are inverses; `promptTokens` maps a prompt to word ids of a fixed
 * vocabulary for a small text encoder.
 */
import { InvalidArgumentError } from '@prfl/tensor';
import {
  COLOURS,
  type ColourName,
  MOTION_PHRASES,
  MOTIONS,
  type MotionKind,
  SHAPES,
  type ShapeName,
  SIZES,
  type SizeName,
} from './vocabulary.js';

/** What a prompt says. */
export interface PromptSpec {
  colour: ColourName;
  shape: ShapeName;
  size: SizeName;
  motion: MotionKind;
}

export function formatPrompt(spec: PromptSpec): string {
  const words: string[] = [];
  if (spec.size !== 'medium') words.push(spec.size);
  words.push(spec.colour, spec.shape, MOTION_PHRASES[spec.motion]);
  const first = words[0] as string;
  const article = /^[aeiou]/.test(first) ? 'an' : 'a';
  return `${article} ${words.join(' ')}`;
}

const PHRASE_TO_MOTION = new Map<string, MotionKind>(MOTIONS.map((m) => [MOTION_PHRASES[m], m]));

/**
 * Reads a prompt of the grammar back into its parts (case and extra spaces are forgiven).
 * @throws InvalidArgumentError naming the part that does not fit the grammar.
 */
export function parsePrompt(prompt: string): PromptSpec {
  const words = prompt.trim().toLowerCase().split(/\s+/);
  const fail = (why: string) =>
    new InvalidArgumentError(
      `prompt ${JSON.stringify(prompt)}: ${why} (grammar: "a [small|large] <colour> <shape> <motion>")`,
    );
  let i = 0;
  if (words[i] === 'a' || words[i] === 'an') i++;
  let size: SizeName = 'medium';
  if ((SIZES as readonly string[]).includes(words[i] ?? '')) size = words[i++] as SizeName;
  const colour = words[i++];
  if (!(COLOURS as readonly string[]).includes(colour ?? '')) {
    throw fail(`expected a colour (${COLOURS.join(', ')}), got ${JSON.stringify(colour ?? '')}`);
  }
  const shape = words[i++];
  if (!(SHAPES as readonly string[]).includes(shape ?? '')) {
    throw fail(`expected a shape (${SHAPES.join(', ')}), got ${JSON.stringify(shape ?? '')}`);
  }
  const phrase = words.slice(i).join(' ');
  const motion = PHRASE_TO_MOTION.get(phrase);
  if (!motion) {
    throw fail(
      `unknown motion phrase ${JSON.stringify(phrase)}; known: ${MOTIONS.map((m) => MOTION_PHRASES[m]).join('; ')}`,
    );
  }
  return { colour: colour as ColourName, shape: shape as ShapeName, size, motion };
}

/** Every word the grammar can produce, in a fixed order; index 0 is padding, 1 is unknown. */
export const PROMPT_VOCABULARY: readonly string[] = (() => {
  const words = new Set<string>(['<pad>', '<unk>', 'a', 'an', ...SIZES, ...COLOURS, ...SHAPES]);
  for (const m of MOTIONS) for (const w of MOTION_PHRASES[m].split(' ')) words.add(w);
  return [...words];
})();

const WORD_ID = new Map(PROMPT_VOCABULARY.map((w, i) => [w, i]));

/**
 * Word ids of a prompt, padded with 0 (or cut) to `length` when given. Unknown words map to 1, so any
 * text can be encoded; the MovingShapes grammar never produces one.
 */
export function promptTokens(prompt: string, length?: number): number[] {
  const ids = prompt
    .trim()
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => WORD_ID.get(w) ?? 1);
  if (length === undefined) return ids;
  if (!Number.isInteger(length) || length <= 0) {
    throw new InvalidArgumentError(`promptTokens: length must be a positive integer, got ${String(length)}`);
  }
  return Array.from({ length }, (_, k) => ids[k] ?? 0);
}
