import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PRFL_DEFAULTS } from '@prfl/refl';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CONFIG_SCHEMA,
  ConfigError,
  closest,
  describeExpected,
  parseSet,
  resolveConfig,
  SCHEMA_BY_KEY,
} from '../src/index.js';
import { tempDir } from './fixtures.js';

const tmp = tempDir('config');
afterAll(tmp.remove);

function file(name: string, text: string): string {
  const f = path.join(tmp.dir, name);
  writeFileSync(f, text);
  return f;
}

async function configError(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ConfigError);
  const message = (e as Error).message;
  expect(message).not.toContain('\n');
  return message;
}

describe('config schema', () => {
  it('has the paper defaults, taken from the library tables', async () => {
    const c = await resolveConfig();
    expect(c.get('optimizer.learning_rate')).toBe(5e-6);
    expect(c.get('optimizer.adam_beta1')).toBe(0.9);
    expect(c.get('optimizer.adam_beta2')).toBe(0.999);
    expect(c.get('optimizer.weight_decay')).toBe(0.01);
    expect(c.get('train.gradient_accumulation_steps')).toBe(5);
    expect(c.get('dataset.uncond_prob')).toBe(0.1);
    expect(c.get('extra_model.scheduler.flow_shift')).toBe(5);
    expect(c.get('prfl.sampling.num_steps')).toBe(40);
    expect(c.get('lrm.pool')).toBe('q_attn');
    expect(c.get('lrm.loss')).toBe('ce');
    expect(c.get('model.lora.target_modules')).toEqual(['q', 'k', 'v', 'o']);
    expect(c.get('optimizer.learning_rate')).toBe(PRFL_DEFAULTS.lr);
  });

  it('every key has a help text, a valid default and a unique name', () => {
    expect(new Set(CONFIG_SCHEMA.map((k) => k.key)).size).toBe(CONFIG_SCHEMA.length);
    for (const k of CONFIG_SCHEMA) {
      expect(k.help.length, k.key).toBeGreaterThan(10);
      expect(k.reference, k.key).toBe(!k.key.startsWith('prfl.'));
    }
  });

  it('describes what a key accepts', () => {
    expect(describeExpected(SCHEMA_BY_KEY.get('optimizer.adam_beta1')!)).toBe('a number in [0, 1)');
    expect(describeExpected(SCHEMA_BY_KEY.get('model.ema.ema_decay')!)).toBe('a number in (0, 1)');
    expect(describeExpected(SCHEMA_BY_KEY.get('prfl.max_grad_norm')!)).toBe('a number > 0 or null');
    expect(describeExpected(SCHEMA_BY_KEY.get('lrm.pool')!)).toBe('one of q_attn, max, mean');
  });
});

describe('merging: defaults < config files < --set < options', () => {
  it('applies files in order, then --set, then the command options', async () => {
    const a = file(
      'a.yaml',
      'optimizer:\n  learning_rate: 1e-5\n  weight_decay: 0.05\ntrain:\n  seed: 7\nmodel:\n  lora:\n    use_lora: true\n',
    );
    const b = file('b.json', JSON.stringify({ optimizer: { weight_decay: 0.02 }, lrm: { pool: 'mean' } }));
    const c = await resolveConfig({
      files: [a, b],
      set: [
        'train.seed=9',
        'model.lora.target_modules=[q, v]',
        'prfl.max_grad_norm=null',
        'save.output_dir=out',
      ],
      overrides: [
        { key: 'train.seed', value: 11, flag: '--seed' },
        { key: 'eval.seed', value: undefined, flag: '--x' },
      ],
    });
    expect(c.get('optimizer.learning_rate')).toBe(1e-5);
    expect(c.source('optimizer.learning_rate')).toBe(a);
    expect(c.get('optimizer.weight_decay')).toBe(0.02);
    expect(c.get('lrm.pool')).toBe('mean');
    expect(c.get('model.lora.use_lora')).toBe(true);
    expect(c.get('model.lora.target_modules')).toEqual(['q', 'v']);
    expect(c.get('prfl.max_grad_norm')).toBeNull();
    expect(c.get('save.output_dir')).toBe('out');
    expect(c.get('train.seed')).toBe(11);
    expect(c.source('train.seed')).toBe('--seed');
    expect(c.get('eval.seed')).toBe(0);
    // The resolved YAML reads back to the same values.
    const back = await resolveConfig({ files: [file('back.yaml', c.toYaml())] });
    expect(back.flat()).toEqual(c.flat());
    expect(YAML.parse(c.toYaml()).optimizer.weight_decay).toBe(0.02);
  });

  it('reads --set values as YAML scalars', () => {
    expect(parseSet('a.b=1e-5')).toEqual(['a.b', 1e-5]);
    expect(parseSet('a.b=true')).toEqual(['a.b', true]);
    expect(parseSet('a.b=~')).toEqual(['a.b', null]);
    expect(parseSet('a.b=hello world')).toEqual(['a.b', 'hello world']);
    expect(parseSet('a.b="3"')).toEqual(['a.b', '3']);
    expect(parseSet('a.b=x=y')).toEqual(['a.b', 'x=y']);
  });

  it('an empty file and a null section are fine', async () => {
    const c = await resolveConfig({ files: [file('empty.yaml', ''), file('null.yaml', 'optimizer:\n')] });
    expect(c.get('optimizer.learning_rate')).toBe(5e-6);
  });
});

describe('config errors name the key, what was expected and what came in', () => {
  it('unknown keys, with the closest known key', async () => {
    expect(await configError(resolveConfig({ set: ['optimizer.learnig_rate=1'] }))).toBe(
      'unknown config key optimizer.learnig_rate (from --set); did you mean optimizer.learning_rate? `prfl config --keys` lists every key',
    );
    const f = file('typo.yaml', 'train:\n  sed: 3\n');
    expect(await configError(resolveConfig({ files: [f] }))).toMatch(
      new RegExp(
        `^unknown config key train.sed \\(in ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\); did you mean train.seed\\?`,
      ),
    );
    expect(await configError(resolveConfig({ set: ['train.learning_rate=1'] }))).toContain(
      'did you mean optimizer.learning_rate?',
    );
    expect(await configError(resolveConfig({ set: ['zzz.qqq=1'] }))).not.toContain('did you mean');
    expect(
      closest(
        'lrm.pol',
        CONFIG_SCHEMA.map((k) => k.key),
      ),
    ).toBe('lrm.pool');
  });

  it('wrong types', async () => {
    expect(await configError(resolveConfig({ set: ['optimizer.learning_rate=fast'] }))).toBe(
      'optimizer.learning_rate (from --set): expected a number > 0, got the string "fast"',
    );
    expect(await configError(resolveConfig({ set: ['model.lora.use_lora=1'] }))).toBe(
      'model.lora.use_lora (from --set): expected true or false, got number 1',
    );
    expect(await configError(resolveConfig({ set: ['train.seed=1.5'] }))).toBe(
      'train.seed (from --set): expected an integer >= 0, got number 1.5',
    );
    expect(await configError(resolveConfig({ set: ['train.seed=null'] }))).toBe(
      'train.seed (from --set): expected an integer >= 0, got null',
    );
    expect(await configError(resolveConfig({ set: ['model.lora.target_modules=[1, 2]'] }))).toBe(
      'model.lora.target_modules (from --set): expected a list of strings, got the list [1,2]',
    );
    const f = file('mapping.yaml', 'optimizer:\n  learning_rate:\n    value: 3\n');
    expect(await configError(resolveConfig({ files: [f] }))).toBe(
      `optimizer.learning_rate (in ${f}): expected a number > 0, got a mapping {"value":3}`,
    );
    expect(await configError(resolveConfig({ files: [file('section.yaml', 'optimizer: 3\n')] }))).toMatch(
      /^optimizer \(in .*section\.yaml\) is a section \(optimizer\.learning_rate, .*\), not a value; got number 3$/,
    );
  });

  it('values out of range', async () => {
    expect(await configError(resolveConfig({ set: ['dataset.uncond_prob=1.5'] }))).toBe(
      'dataset.uncond_prob (from --set): expected a number in [0, 1], got number 1.5',
    );
    expect(await configError(resolveConfig({ set: ['optimizer.adam_beta2=1'] }))).toBe(
      'optimizer.adam_beta2 (from --set): expected a number in [0, 1), got number 1',
    );
    expect(await configError(resolveConfig({ set: ['lrm.pool=avg'] }))).toBe(
      'lrm.pool (from --set): expected one of q_attn, max, mean, got the string "avg"',
    );
    expect(
      await configError(
        resolveConfig({ overrides: [{ key: 'prfl.sampling.num_steps', value: 0, flag: '--steps' }] }),
      ),
    ).toBe('prfl.sampling.num_steps (from --steps): expected an integer >= 1, got number 0');
  });

  it('bad --set syntax', async () => {
    expect(await configError(resolveConfig({ set: ['train.seed'] }))).toBe(
      '--set: expected key=value with a dotted key (e.g. --set optimizer.learning_rate=1e-5), got "train.seed"',
    );
    expect(await configError(resolveConfig({ set: ['=3'] }))).toContain('expected key=value');
    expect(await configError(resolveConfig({ set: ['train..seed=3'] }))).toContain('expected key=value');
    expect(await configError(resolveConfig({ set: ['train.seed='] }))).toBe(
      '--set train.seed: no value after "=" (write train.seed=null for null)',
    );
    expect(await configError(resolveConfig({ set: ['optimizer=3'] }))).toMatch(
      /^--set optimizer: optimizer is a section/,
    );
    expect(await configError(resolveConfig({ set: ['train.seed=[1'] }))).toMatch(
      /^--set train.seed: cannot read the value "\[1"/,
    );
  });

  it('bad files', async () => {
    expect(await configError(resolveConfig({ files: [path.join(tmp.dir, 'none.yaml')] }))).toMatch(
      /^config file .*none\.yaml does not exist$/,
    );
    expect(await configError(resolveConfig({ files: [file('c.toml', 'a = 1')] }))).toMatch(
      /c\.toml: a config file must end in \.yaml, \.yml or \.json, got "\.toml"$/,
    );
    expect(await configError(resolveConfig({ files: [file('bad.yaml', 'train:\n  seed: [1\n')] }))).toMatch(
      /bad\.yaml(:\d+)?: not valid YAML/,
    );
    expect(await configError(resolveConfig({ files: [file('bad.json', '{"train": ')] }))).toMatch(
      /bad\.json: not valid JSON/,
    );
    expect(await configError(resolveConfig({ files: [file('list.yaml', '- 1\n- 2\n')] }))).toMatch(
      /list\.yaml: expected a mapping of config keys at the top, got the list \[1,2\]$/,
    );
  });
});

describe('suggestions', () => {
  const keys = CONFIG_SCHEMA.map((k) => k.key);
  it.each([
    ['optimizer.lr', 'optimizer.learning_rate'],
    ['optimizer.wd', 'optimizer.weight_decay'],
    ['train.gradient_accumulation', 'train.gradient_accumulation_steps'],
    ['dataset.batchsize', 'dataset.batch_size'],
    ['model.lora.rank', 'model.lora.lora_rank'],
  ])('%s -> %s', (input, want) => {
    expect(closest(input, keys)).toBe(want);
  });
});
