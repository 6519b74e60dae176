import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', 'parallel/index': 'src/parallel/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  splitting: true,
  treeshake: true,
  // tfjs is a peer dependency and @prfl/* are dependencies: all stay imports, so the engine, the gradient
  // registry and the error classes are the very ones the caller uses.
  external: [/^@tensorflow\//, /^@prfl\//],
});
