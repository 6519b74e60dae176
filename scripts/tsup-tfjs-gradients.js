// @ts-check
import { createRequire } from 'node:module';
import path from 'node:path';
/**
 * tfjs-core registers no gradients by itself; they live in
 * `@tensorflow/tfjs-core/dist/register_all_gradients.js`, an ESM file whose imports have no file
 * extensions, so plain Node (ESM or CJS) cannot load it. This esbuild plugin bundles that file (and the
 * tfjs-core modules it reaches) into our output while every other `@tensorflow/*` import stays
 * external. The bundled copy shares the real tfjs-core's engine and registries, which tfjs keeps on
 * globalThis, and tfjs's `Tensor` uses a structural `instanceof`, so tensors cross freely.
 * @returns {import('esbuild').Plugin}
 */
export function tfjsGradientsPlugin() {
  return {
    name: 'prfl-tfjs-gradients',
    setup(build) {
      build.onResolve({ filter: /^@tensorflow\/tfjs-core\/dist\/register_all_gradients(\.js)?$/ }, (args) => {
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
