/**
 * A strict JSON parser for safetensors headers and shard indexes. Unlike JSON.parse it rejects duplicate
 * keys, keeps each number's text (so `9007199254740993` is not silently rounded), keeps key order, and
 * bounds nesting depth, so hostile input fails fast with a position instead of misbehaving.
 */

/** A JSON number, kept as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
  /** The number as a JS double (may round). */
  get value(): number {
    return Number(this.text);
  }
  /** True for a non-negative integer written without sign, fraction or exponent (what Rust's `usize` accepts). */
  isUnsignedIntegerText(): boolean {
    return /^(?:0|[1-9][0-9]*)$/.test(this.text);
  }
}

/** A parsed JSON value: objects are ordered Maps, numbers are JsonNumber. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** A parsed JSON object, keys in file order. */
export type JsonObject = Map<string, JsonValue>;

/** Thrown by parseStrictJson; callers wrap it into a CorruptFileError naming the file. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    readonly reason: string,
    readonly position: number,
  ) {
    super(`${reason} at character ${position}`);
  }
}

const MAX_DEPTH = 64;

/** Parses `text` as one JSON value (surrounding whitespace allowed). Throws JsonSyntaxError. */
export function parseStrictJson(text: string): JsonValue {
  let pos = 0;
  const n = text.length;

  const fail = (reason: string, at = pos): never => {
    throw new JsonSyntaxError(reason, at);
  };
  const skipWhitespace = (): void => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const describe = (at: number): string =>
    at >= n ? 'end of input' : JSON.stringify(text.slice(at, at + 1)).replace(/^"|"$/g, "'");

  const parseString = (): string => {
    // pos is at the opening quote.
    const start = pos;
    pos++;
    let out = '';
    let segment = pos;
    for (;;) {
      if (pos >= n) fail('unterminated string', start);
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(segment, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail('control character inside a string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(segment, pos);
      pos++;
      const e = text.charCodeAt(pos);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const unit = readHex4(pos + 1);
          pos += 4;
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (text.charCodeAt(pos + 1) !== 0x5c || text.charCodeAt(pos + 2) !== 0x75) {
              fail('lone surrogate in \\u escape');
            }
            const low = readHex4(pos + 3);
            if (low < 0xdc00 || low > 0xdfff) fail('lone surrogate in \\u escape');
            pos += 6;
            out += String.fromCharCode(unit, low);
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            fail('lone surrogate in \\u escape');
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          fail(`invalid escape \\${describe(pos).slice(1, -1)}`);
      }
      pos++;
      segment = pos;
    }
  };

  const readHex4 = (at: number): number => {
    if (at + 4 > n) fail('truncated \\u escape', at);
    const hex = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape', at);
    return Number.parseInt(hex, 16);
  };

  const parseNumber = (): JsonNumber => {
    const start = pos;
    if (text.charCodeAt(pos) === 0x2d) pos++;
    const digits = (): number => {
      const s = pos;
      while (pos < n) {
        const c = text.charCodeAt(pos);
        if (c >= 0x30 && c <= 0x39) pos++;
        else break;
      }
      return pos - s;
    };
    const intStart = pos;
    const intDigits = digits();
    if (intDigits === 0) fail('invalid number', start);
    if (intDigits > 1 && text.charCodeAt(intStart) === 0x30) fail('number with a leading zero', start);
    if (text.charCodeAt(pos) === 0x2e) {
      pos++;
      if (digits() === 0) fail('invalid number', start);
    }
    const c = text.charCodeAt(pos);
    if (c === 0x65 || c === 0x45) {
      pos++;
      const s = text.charCodeAt(pos);
      if (s === 0x2b || s === 0x2d) pos++;
      if (digits() === 0) fail('invalid number', start);
    }
    return new JsonNumber(text.slice(start, pos));
  };

  const parseValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`);
    skipWhitespace();
    if (pos >= n) fail('unexpected end of input');
    const c = text.charCodeAt(pos);
    if (c === 0x7b) return parseObject(depth);
    if (c === 0x5b) return parseArray(depth);
    if (c === 0x22) return parseString();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    return fail(`unexpected ${describe(pos)}`);
  };

  const parseArray = (depth: number): JsonValue[] => {
    pos++;
    const out: JsonValue[] = [];
    skipWhitespace();
    if (text.charCodeAt(pos) === 0x5d) {
      pos++;
      return out;
    }
    for (;;) {
      out.push(parseValue(depth + 1));
      skipWhitespace();
      const c = text.charCodeAt(pos);
      if (c === 0x2c) {
        pos++;
        continue;
      }
      if (c === 0x5d) {
        pos++;
        return out;
      }
      fail(`expected ',' or ']' in an array, got ${describe(pos)}`);
    }
  };

  const parseObject = (depth: number): JsonObject => {
    pos++;
    const out: JsonObject = new Map();
    skipWhitespace();
    if (text.charCodeAt(pos) === 0x7d) {
      pos++;
      return out;
    }
    for (;;) {
      skipWhitespace();
      if (text.charCodeAt(pos) !== 0x22) fail(`expected a string key, got ${describe(pos)}`);
      const keyAt = pos;
      const key = parseString();
      if (out.has(key)) fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
      skipWhitespace();
      if (text.charCodeAt(pos) !== 0x3a) fail(`expected ':' after a key, got ${describe(pos)}`);
      pos++;
      out.set(key, parseValue(depth + 1));
      skipWhitespace();
      const c = text.charCodeAt(pos);
      if (c === 0x2c) {
        pos++;
        continue;
      }
      if (c === 0x7d) {
        pos++;
        return out;
      }
      fail(`expected ',' or '}' in an object, got ${describe(pos)}`);
    }
  };

  const value = parseValue(0);
  skipWhitespace();
  if (pos < n) fail(`unexpected ${describe(pos)} after the JSON value`);
  return value;
}

/** A short description of a JSON value's type for error messages ("a string", "an array", ...). */
export function describeJsonType(value: JsonValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'boolean') return `${value}`;
  if (typeof value === 'string') return `the string ${truncate(JSON.stringify(value), 40)}`;
  if (value instanceof JsonNumber) return `the number ${truncate(value.text, 30)}`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return 'an object';
}

/** Shortens `text` to `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A JsonValue converted to plain JS (numbers as doubles), for metadata users inspect. */
export function jsonToPlain(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return value.value;
  if (Array.isArray(value)) return value.map(jsonToPlain);
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) defineEntry(out, k, jsonToPlain(v));
    return out;
  }
  return value;
}

/** Sets `record[key] = value` as an own data property, even for keys like `__proto__`. */
export function defineEntry<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
