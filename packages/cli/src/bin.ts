#!/usr/bin/env node
/** The `prfl` executable. */
import { run } from './program.js';

run(process.argv.slice(2)).then(
  (code) => {
    // Exit once stdout has drained (a large --json result into a pipe), without waiting for idle handles.
    process.stdout.write('', () => process.exit(code));
  },
  (e: unknown) => {
    process.stderr.write(`prfl: unexpected error\n${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
