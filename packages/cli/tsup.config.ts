import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', bin: 'src/bin.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  sourcemap: true,
  clean: true,
  target: 'es2022',
  splitting: true,
  treeshake: true,
  // tfjs and @prfl/* stay imports, so the engine, the gradient registry and the error classes are the
  // very ones the other packages use; the CLI's own dependencies (commander, yaml, ...) are imports too.
  external: [/^@tensorflow\//, /^@prfl\//],
});
