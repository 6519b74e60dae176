/**
 * diffusers-compatible JSON configs: the key names of diffusers' `scheduler_config.json` (snake_case,
 * `_class_name`), every key checked. An unknown key or a bad value is an InvalidArgumentError that names
 * the key, what is accepted and what arrived; keys diffusers accepts but we do not implement are accepted
 * only at their default value, so a config never silently means something else here than in diffusers.
 */
import { InvalidArgumentError } from '@prfl/tensor';

/** A JSON value a scheduler config holds. */
export type ConfigValue = number | string | boolean | null | readonly number[];

/** How one key is read: its default and a check that returns what was expected, or undefined when fine. */
export interface KeySpec {
  readonly default: ConfigValue;
  /** Returns the text "expected ..." when `value` is not acceptable. */
  readonly check: (value: unknown) => string | undefined;
}

export type ConfigSpec<C> = { readonly [K in keyof C]: KeySpec };

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** An integer in [min, max]. */
export function integer(defaultValue: number, min: number, max = Number.MAX_SAFE_INTEGER): KeySpec {
  return {
    default: defaultValue,
    check: (v) =>
      typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
        ? undefined
        : `an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? 'inf' : max}]`,
  };
}

/** A finite number in (min, max] when `exclusiveMin`, else [min, max]. */
export function finite(defaultValue: number | null, min: number, max: number, exclusiveMin = false): KeySpec {
  const range = `${exclusiveMin ? '(' : '['}${min}, ${max === Infinity ? 'inf' : max}]`;
  return {
    default: defaultValue,
    check: (v) =>
      typeof v === 'number' && Number.isFinite(v) && (exclusiveMin ? v > min : v >= min) && v <= max
        ? undefined
        : `a finite number in ${range}`,
  };
}

/** A finite number, or null (diffusers' `Optional[float]`). */
export function nullableFinite(defaultValue: number | null): KeySpec {
  return {
    default: defaultValue,
    check: (v) =>
      v === null || (typeof v === 'number' && Number.isFinite(v)) ? undefined : 'a finite number or null',
  };
}

export function boolean(defaultValue: boolean): KeySpec {
  return { default: defaultValue, check: (v) => (typeof v === 'boolean' ? undefined : 'true or false') };
}

/** One of a few strings. */
export function oneOf(defaultValue: string, values: readonly string[]): KeySpec {
  return {
    default: defaultValue,
    check: (v) =>
      typeof v === 'string' && values.includes(v)
        ? undefined
        : `one of ${values.map((s) => `"${s}"`).join(', ')}`,
  };
}

/**
 * A key diffusers has but this implementation supports only at one value (usually the default): any other
 * value is refused with `reason`, rather than silently ignored.
 */
export function only(value: ConfigValue, reason: string): KeySpec {
  return {
    default: value,
    check: (v) => (show(v) === show(value) ? undefined : `${show(value)} (${reason})`),
  };
}

/** A list of non-negative integers (UniPC's `disable_corrector`). */
export function integerList(defaultValue: readonly number[]): KeySpec {
  return {
    default: defaultValue,
    check: (v) =>
      Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)
        ? undefined
        : 'a list of non-negative integers',
  };
}

/** null or a list of finite numbers of a given length (DDPM-family `trained_betas`). */
export function nullableNumberList(): KeySpec {
  return {
    default: null,
    check: (v) =>
      v === null || (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)))
        ? undefined
        : 'null or a list of finite numbers',
  };
}

/**
 * Reads a config: `input` is a partial config (TypeScript options) or a parsed diffusers JSON. Keys starting
 * with `_` are diffusers metadata (`_class_name`, `_diffusers_version`, `_name_or_path`) and are not part of
 * the config; `_class_name`, when present, must be one of `classNames`.
 *
 * @throws InvalidArgumentError on a non-object, an unknown `_class_name`, an unknown key or a bad value.
 */
export function readConfig<C>(classNames: readonly string[], spec: ConfigSpec<C>, input: unknown): C {
  const what = `${classNames[0]} config`;
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidArgumentError(`${what}: expected a JSON object, got ${show(input)}`);
  }
  const record = input as Record<string, unknown>;
  const className = record['_class_name'];
  if (className !== undefined && !classNames.includes(className as string)) {
    throw new InvalidArgumentError(
      `${what}: _class_name: expected ${classNames.map((s) => `"${s}"`).join(' or ')}, got ${show(className)}`,
    );
  }
  const keys = Object.keys(spec) as (keyof C & string)[];
  for (const key of Object.keys(record)) {
    if (key.startsWith('_')) continue;
    if (!(keys as string[]).includes(key)) {
      throw new InvalidArgumentError(`${what}: unknown key "${key}"; accepted keys: ${keys.join(', ')}`);
    }
  }
  const out: Record<string, ConfigValue> = {};
  for (const key of keys) {
    const keySpec = spec[key];
    const value = record[key] === undefined ? keySpec.default : record[key];
    const expected = keySpec.check(value);
    if (expected !== undefined) {
      throw new InvalidArgumentError(`${what}: ${key}: expected ${expected}, got ${show(value)}`);
    }
    out[key] = Array.isArray(value) ? Object.freeze([...value]) : (value as ConfigValue);
  }
  return Object.freeze(out) as C;
}

/** The JSON a diffusers `from_config` reads: `_class_name` first, then every key. */
export function writeConfig<C>(className: string, config: C): Record<string, unknown> {
  const out: Record<string, unknown> = { _class_name: className };
  for (const [k, v] of Object.entries(config as Record<string, unknown>))
    out[k] = Array.isArray(v) ? [...v] : v;
  return out;
}
