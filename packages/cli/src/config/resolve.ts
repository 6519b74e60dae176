/**
 * The configuration of one run: the schema's defaults, then each config file in the order given, then
 * each `--set key=value`, later ones winning. Every value is checked against the schema; a wrong one is a
 * ConfigError naming the key, what it expects and what came in (and where from).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../errors.js';
import { toYaml } from '../yaml-text.js';
import {
  CONFIG_SCHEMA,
  CONFIG_SECTIONS,
  type ConfigKey,
  type ConfigValue,
  describeExpected,
  SCHEMA_BY_KEY,
} from './schema.js';
import { closest } from './suggest.js';

/** A merged, checked configuration: one value per schema key. */
export class ResolvedConfig {
  readonly #values: Map<string, ConfigValue>;
  /** Where each value came from: 'default', a file path, or '--set'. */
  readonly #sources: Map<string, string>;

  constructor(values: Map<string, ConfigValue>, sources: Map<string, string>) {
    this.#values = values;
    this.#sources = sources;
  }

  /** The value of a key; throws for a key the schema does not have (a bug in the caller). */
  get<T extends ConfigValue = ConfigValue>(key: string): T {
    if (!this.#values.has(key)) throw new Error(`ResolvedConfig.get: no key ${key} in the schema`);
    return this.#values.get(key) as T;
  }

  number(key: string): number {
    return this.get<number>(key);
  }

  /** Where the key's value came from: 'default', a file path or '--set'. */
  source(key: string): string {
    return this.#sources.get(key) ?? 'default';
  }

  /** Flat { 'a.b.c': value } in schema order. */
  flat(): Record<string, ConfigValue> {
    return Object.fromEntries(CONFIG_SCHEMA.map((k) => [k.key, this.#values.get(k.key) ?? null]));
  }

  /** Nested { a: { b: { c: value } } } in schema order: what config.resolved.yaml holds. */
  nested(): Record<string, unknown> {
    const root: Record<string, unknown> = {};
    for (const { key } of CONFIG_SCHEMA) {
      const parts = key.split('.');
      let node = root;
      for (const p of parts.slice(0, -1)) {
        if (node[p] === undefined) node[p] = {};
        node = node[p] as Record<string, unknown>;
      }
      const v = this.#values.get(key) ?? null;
      node[parts[parts.length - 1] as string] = Array.isArray(v) ? [...v] : v;
    }
    return root;
  }

  /** The configuration as YAML (config.resolved.yaml). */
  toYaml(): string {
    return toYaml(this.nested());
  }
}

/** What each layer of the merge brings: where it came from and its values by dotted key. */
export interface ConfigLayer {
  source: string;
  values: Map<string, unknown>;
}

function show(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return `the list ${JSON.stringify(value)}`;
  if (typeof value === 'object') return `a mapping ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

/** " (from --set)", " (in file.yaml)", or nothing for defaults. */
function where(source: string): string {
  if (source === 'default') return '';
  return source.startsWith('--') ? ` (from ${source})` : ` (in ${source})`;
}

function unknownKey(key: string, source: string): ConfigError {
  const known = CONFIG_SCHEMA.map((k) => k.key);
  const hint = closest(key, known);
  return new ConfigError(
    `unknown config key ${key}${where(source)}; ${hint !== undefined ? `did you mean ${hint}? ` : ''}` +
      '`prfl config --keys` lists every key',
  );
}

/** Checks one value against its key; returns it as stored (lists copied). */
export function checkValue(spec: ConfigKey, value: unknown, source: string): ConfigValue {
  const fail = (): never => {
    throw new ConfigError(
      `${spec.key}${where(source)}: expected ${describeExpected(spec)}, got ${show(value)}`,
    );
  };
  if (value === null || value === undefined) {
    if (spec.nullable) return null;
    return fail();
  }
  switch (spec.type) {
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail();
      if (spec.type === 'integer' && !Number.isSafeInteger(value)) return fail();
      const { min, max } = spec;
      if (min !== undefined && (spec.minExclusive ? value <= min : value < min)) return fail();
      if (max !== undefined && (spec.maxExclusive ? value >= max : value > max)) return fail();
      return value;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : fail();
    case 'string':
    case 'path':
      return typeof value === 'string' && (spec.type === 'string' || value !== '') ? value : fail();
    case 'enum':
      return typeof value === 'string' && (spec.values ?? []).includes(value) ? value : fail();
    case 'list': {
      // A single string is a list of one, as the reference's YAML often writes it.
      if (typeof value === 'string') return [value];
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) return fail();
      return Object.freeze([...(value as string[])]);
    }
  }
}

/**
 * Flattens a parsed config document into dotted keys. A mapping under a key of the schema is an error
 * (the key takes a value, not a section), and so is a value where the schema has a section.
 */
export function flattenConfig(doc: unknown, source: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${source}: expected a mapping of config keys at the top, got ${show(doc)}`);
  }
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(node)) {
      const key = prefix === '' ? k : `${prefix}.${k}`;
      const spec = SCHEMA_BY_KEY.get(key);
      if (spec === undefined && CONFIG_SECTIONS.has(key)) {
        if (v === null || v === undefined) continue;
        if (typeof v !== 'object' || Array.isArray(v)) {
          throw new ConfigError(
            `${key} (in ${source}) is a section (${sectionKeys(key)}), not a value; got ${show(v)}`,
          );
        }
        walk(v as Record<string, unknown>, key);
        continue;
      }
      if (spec === undefined) throw unknownKey(key, source);
      out.set(key, v);
    }
  };
  walk(doc as Record<string, unknown>, '');
  return out;
}

function sectionKeys(section: string): string {
  const keys = CONFIG_SCHEMA.filter((k) => k.key.startsWith(`${section}.`)).map((k) => k.key);
  return keys.length <= 4 ? keys.join(', ') : `${keys.slice(0, 4).join(', ')}, ...`;
}

/** Parses a config file's text by its extension (.yaml, .yml or .json). */
export function parseConfigText(text: string, file: string): unknown {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.json') {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (ext === '.yaml' || ext === '.yml') {
    const doc = YAML.parseDocument(text, { prettyErrors: true });
    const err = doc.errors[0];
    if (err !== undefined) {
      const line = err.linePos?.[0]?.line;
      throw new ConfigError(
        `${file}${line !== undefined ? `:${line}` : ''}: not valid YAML (${err.message.split('\n')[0]})`,
      );
    }
    return doc.toJS();
  }
  throw new ConfigError(
    `${file}: a config file must end in .yaml, .yml or .json, got "${ext || 'no extension'}"`,
  );
}

/** Reads and flattens one config file. */
export async function readConfigFile(file: string): Promise<ConfigLayer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `config file ${file} does not exist`
        : `cannot read config file ${file} (${(e as Error).message})`,
    );
  }
  return { source: file, values: flattenConfig(parseConfigText(text, file), file) };
}

/** Parses `key=value`; the value is read as YAML (`1e-5` a number, `true` a boolean, `[q, k]` a list, `~` null). */
export function parseSet(assignment: string): [string, unknown] {
  const eq = assignment.indexOf('=');
  const key = eq < 0 ? '' : assignment.slice(0, eq).trim();
  if (eq < 0 || key === '' || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(key)) {
    throw new ConfigError(
      `--set: expected key=value with a dotted key (e.g. --set optimizer.learning_rate=1e-5), got ${JSON.stringify(assignment)}`,
    );
  }
  const raw = assignment.slice(eq + 1);
  if (raw.trim() === '') {
    throw new ConfigError(`--set ${key}: no value after "=" (write ${key}=null for null)`);
  }
  let value: unknown;
  try {
    value = YAML.parse(raw);
  } catch (e) {
    throw new ConfigError(
      `--set ${key}: cannot read the value ${JSON.stringify(raw)} (${(e as Error).message.split('\n')[0]})`,
    );
  }
  return [key, value];
}

/** The --set layer. */
export function setLayer(assignments: readonly string[]): ConfigLayer {
  const values = new Map<string, unknown>();
  for (const a of assignments) {
    const [key, value] = parseSet(a);
    if (!SCHEMA_BY_KEY.has(key)) {
      if (CONFIG_SECTIONS.has(key)) {
        throw new ConfigError(`--set ${key}: ${key} is a section (${sectionKeys(key)}); set one of its keys`);
      }
      throw unknownKey(key, '--set');
    }
    values.set(key, value);
  }
  return { source: '--set', values };
}

/** Merges defaults < layers (in order) and checks every value. */
export function mergeConfig(layers: readonly ConfigLayer[]): ResolvedConfig {
  const values = new Map<string, ConfigValue>();
  const sources = new Map<string, string>();
  for (const spec of CONFIG_SCHEMA) values.set(spec.key, spec.default);
  for (const layer of layers) {
    for (const [key, value] of layer.values) {
      const spec = SCHEMA_BY_KEY.get(key);
      if (spec === undefined) throw unknownKey(key, layer.source);
      values.set(key, checkValue(spec, value, layer.source));
      sources.set(key, layer.source);
    }
  }
  return new ResolvedConfig(values, sources);
}

export interface ResolveConfigOptions {
  /**
   * A command's own defaults (the embedded models' recipe rather than the paper's scale), applied over
   * the schema's defaults and under everything the user gives; `source` names them in config sources.
   */
  defaults?: { source: string; values: Readonly<Record<string, unknown>> };
  /** Config files (YAML or JSON), applied in order. */
  files?: readonly string[];
  /** `key=value` assignments, applied after the files. */
  set?: readonly string[];
  /**
   * Values a command's own options set (--seed, --steps), applied last; `flag` names the option in
   * error messages. Undefined values are skipped.
   */
  overrides?: ReadonlyArray<{ key: string; value: unknown; flag: string }>;
}

/** defaults < the command's defaults < config files < --set < the command's own options. */
export async function resolveConfig(options: ResolveConfigOptions = {}): Promise<ResolvedConfig> {
  const layers: ConfigLayer[] = [];
  if (options.defaults !== undefined) {
    layers.push({
      source: options.defaults.source,
      values: new Map(Object.entries(options.defaults.values)),
    });
  }
  for (const file of options.files ?? []) layers.push(await readConfigFile(file));
  layers.push(setLayer(options.set ?? []));
  for (const { key, value, flag } of options.overrides ?? []) {
    if (value !== undefined) layers.push({ source: flag, values: new Map([[key, value]]) });
  }
  return mergeConfig(layers);
}
