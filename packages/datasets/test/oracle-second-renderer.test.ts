/**
 * The oracle on pixels our renderer never makes (test/support/second-renderer: hard edges, supersampled
 * edges, sizes between the named ones, blur, noise, a VAE-like finish), and on ours clean and degraded:
 * per rendering, false alarms on good motion stay under 5 % and every motion defect is caught in at
 * least 90 % of its clips. Small seeded samples (40 good clips and 15 per defect); the full table, 500
 * clips per cell, is bench/oracle-agreement.mjs (docs/datasets.md, "How far the oracle can be trusted").
 */
import { describe, expect, it } from 'vitest';
import { measureCell, TABLE_DEFECTS, TABLE_RENDERINGS } from './support/oracle-table.js';

const GOOD = 40;
const PER_DEFECT = 15;

describe('oracle on the second renderer and on ours', () => {
  for (const rendering of TABLE_RENDERINGS) {
    it(`${rendering}: false alarms < 5 % on ${GOOD} good clips, recall >= 90 % on ${PER_DEFECT} clips per defect`, () => {
      for (const defect of TABLE_DEFECTS) {
        const cell = measureCell({
          rendering,
          defect,
          count: defect === 'none' ? GOOD : PER_DEFECT,
          seed: `test-second/${rendering}`,
        });
        const rate = cell.flagged / cell.count;
        const why = `${rendering}, ${defect}: ${cell.flagged}/${cell.count} flagged ${JSON.stringify(cell.reasons)}\n${cell.examples.join('\n')}`;
        if (defect === 'none') expect(rate, why).toBeLessThan(0.05);
        else expect(rate, why).toBeGreaterThanOrEqual(0.9);
      }
    }, 60_000);
  }
});
