// @ts-check
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * tfjs-core registers no gradients by itself; they live in
 * `@tensorflow/tfjs-core/dist/register_all_gradients.js`, an ESM file whose imports have no file
 * extensions, so plain Node (ESM or CJS) cannot load it.
 *
 * - `bundle: true` (the Node build): bundle that file and the tfjs-core modules it reaches into our
 *   output; every other `@tensorflow/*` import stays external. The bundled copy shares the real
 *   tfjs-core's engine and registries, which tfjs keeps on globalThis, and tfjs's `Tensor` uses a
 *   structural `instanceof`, so tensors cross freely.
 * - `bundle: false` (the browser build): leave it external with an explicit `.js`, so the user's bundler
 *   resolves it in the same module graph as tfjs-core's ESM entry and nothing is duplicated.
 * @param {{ bundle?: boolean }} [options]
 * @returns {import('esbuild').Plugin}
 */
export function tfjsGradientsPlugin(options = {}) {
  const bundle = options.bundle ?? true;
  return {
    name: 'prfl-tfjs-gradients',
    setup(build) {
      build.onResolve({ filter: /^@tensorflow\/tfjs-core\/dist\/register_all_gradients(\.js)?$/ }, (args) => {
        if (!bundle) return { path: '@tensorflow/tfjs-core/dist/register_all_gradients.js', external: true };
        const require = createRequire(path.join(args.resolveDir, 'noop.js'));
        const pkg = require.resolve('@tensorflow/tfjs-core/package.json');
        return { path: path.join(path.dirname(pkg), 'dist', 'register_all_gradients.js') };
      });
      build.onResolve({ filter: /^(@tensorflow\/|webgpu$)/ }, (args) => ({
        path: args.path,
        external: true,
      }));
    },
  };
}
