/**
 * JSON from untrusted files with bounds checked before parsing: a length limit, and a nesting-depth limit
 * found by a small non-recursive scan of the text. JSON.parse itself copes with deep input, but the
 * value it returns does not: JSON.stringify, structuredClone and any recursive walk of it overflow the
 * stack ("Maximum call stack size exceeded") somewhere far from the file that caused it. The depth bound
 * is the one @prfl/tensor's safetensors header parser uses.
 */
import { CorruptFileError } from '@prfl/tensor';
import { truncateText } from './preview.js';

/** Deepest nesting of arrays and objects accepted (as for safetensors headers). */
export const MAX_JSON_DEPTH = 64;

/**
 * Offset of the first `[` or `{` that opens nesting level `maxDepth + 1`, or -1 when the text stays
 * within `maxDepth`. Brackets inside strings do not count. Exact for valid JSON; for invalid JSON the
 * answer does not matter, JSON.parse rejects it.
 */
export function findExcessNesting(text: string, maxDepth = MAX_JSON_DEPTH): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // the escaped character cannot end the string
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return i;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return -1;
}

export interface BoundedJsonOptions {
  /** Longest text accepted, in UTF-16 code units (callers bound bytes before decoding). */
  maxLength?: number;
  /** Deepest nesting accepted (default MAX_JSON_DEPTH). */
  maxDepth?: number;
}

/**
 * JSON.parse after checking length and depth. `where` names the file (and line) in errors, which show
 * a short preview of the text, never all of it.
 * @throws CorruptFileError for text that is too long, too deep or not JSON.
 */
export function parseBoundedJson(text: string, where: string, options: BoundedJsonOptions = {}): unknown {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  if (options.maxLength !== undefined && text.length > options.maxLength) {
    throw new CorruptFileError(
      `${where}: JSON text of ${text.length} characters is longer than the ${options.maxLength} accepted`,
    );
  }
  const deep = findExcessNesting(text, maxDepth);
  if (deep >= 0) {
    throw new CorruptFileError(
      `${where}: JSON nested deeper than ${maxDepth} levels (at character ${deep}): ${JSON.stringify(truncateText(text, 60))}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8's messages quote a slice of the input; keep them short too.
    throw new CorruptFileError(
      `${where}: not valid JSON (${truncateText((e as Error).message, 120)}): ${JSON.stringify(truncateText(text, 60))}`,
    );
  }
}

/** True for a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An own property of a parsed JSON object (never one inherited from Object.prototype). */
export function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Sets `record[key] = value` as an own data property, even for `__proto__` (plain assignment would set the prototype). */
export function defineEntry<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
