/** The README's table of config keys is generated from the schema; this keeps the two in sync. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configKeysMarkdown } from '../src/index.js';
import { PACKAGE_DIR } from './fixtures.js';

const README = path.join(PACKAGE_DIR, 'README.md');
const START = '<!-- config-keys:start -->\n';
const END = '\n<!-- config-keys:end -->';

describe('README', () => {
  it('lists every config key as the schema has it', () => {
    const text = readFileSync(README, 'utf8');
    const a = text.indexOf(START);
    const b = text.indexOf(END);
    expect(a, 'README.md needs the config-keys markers').toBeGreaterThan(0);
    const want = `${text.slice(0, a + START.length)}${configKeysMarkdown()}${text.slice(b)}`;
    if (process.env['PRFL_UPDATE_DOCS'] === '1') writeFileSync(README, want);
    else expect(text, 'run PRFL_UPDATE_DOCS=1 npx vitest run test/docs.test.ts').toBe(want);
  });
});
