/**
 * Short previews of untrusted values for error messages. A message must stay readable and cheap however
 * hostile the value: JSON.stringify of a deeply nested value overflows the stack, and of a 10 MB string
 * makes a 10 MB message. A preview walks at most a few levels and a few characters.
 */

const MAX_LEVELS = 3;
const MAX_ITEMS = 4;

/** Shortens `text` to at most `max` characters, marking the cut with an ellipsis. */
export function truncateText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * A JSON-like preview of `value` of at most `max` characters: strings quoted and cut, arrays and objects
 * shown to MAX_LEVELS levels and MAX_ITEMS entries ("[[[…]]]", "{"a": 1, …}").
 */
export function previewValue(value: unknown, max = 80): string {
  return truncateText(render(value, 0, max), max);
}

// Recursion here is bounded by MAX_LEVELS, not by the input, and every level stops once `budget`
// characters are produced: the cost is independent of the value's size and depth.
function render(value: unknown, level: number, budget: number): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  // Cut inside the quotes, so a cut string still reads as a string.
  if (typeof value === 'string') return JSON.stringify(truncateText(value, Math.max(1, budget - 2)));
  if (typeof value !== 'object') return typeof value;
  if (level >= MAX_LEVELS) return Array.isArray(value) ? '[…]' : '{…}';
  const parts: string[] = [];
  let used = 2;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && i < MAX_ITEMS && used < budget; i++) {
      const p = render(value[i], level + 1, budget - used);
      parts.push(p);
      used += p.length + 2;
    }
    if (value.length > parts.length) parts.push('…');
    return `[${parts.join(', ')}]`;
  }
  // for...in stops early; Object.keys would list every key of a huge object first.
  let more = false;
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    if (parts.length >= MAX_ITEMS || used >= budget) {
      more = true;
      break;
    }
    const p = `${JSON.stringify(truncateText(k, 40))}: ${render((value as Record<string, unknown>)[k], level + 1, budget - used)}`;
    parts.push(p);
    used += p.length + 2;
  }
  if (more) parts.push('…');
  return `{${parts.join(', ')}}`;
}
