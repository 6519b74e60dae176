import { defineConfig } from 'tsup';
import { tfjsGradientsPlugin } from '../../scripts/tsup-tfjs-gradients.js';

const entry = ['src/index.ts', 'src/register-gradients.ts'];
// Node only: worker threads with model replicas (and the script each worker runs).
const nodeEntry = [...entry, 'src/parallel/index.ts', 'src/parallel/worker.ts'];

export default defineConfig([
  // Node (ESM + CJS) and the default for bundlers that do not ask for `browser`.
  {
    entry: nodeEntry,
    format: ['esm', 'cjs'],
    // import.meta.url in the CJS build (the replica pool finds its worker script beside itself).
    shims: true,
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    splitting: true,
    treeshake: true,
    // tsup would externalise this peer-dependency path; the plugin bundles it instead.
    noExternal: [/register_all_gradients/],
    esbuildPlugins: [tfjsGradientsPlugin({ bundle: true })],
    // The gradients bundled from tfjs-core must find the engine that the real @tensorflow/tfjs-core
    // made; in CJS output bundled modules would otherwise run before the external require, and the
    // bundled engine copy would win.
    banner: ({ format }) => (format === 'cjs' ? { js: 'require("@tensorflow/tfjs-core");' } : {}),
  },
  // Browser bundles: tfjs-core's gradient file stays an import, resolved by the user's bundler.
  {
    entry,
    format: ['esm'],
    outDir: 'dist/browser',
    platform: 'browser',
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'es2022',
    splitting: true,
    treeshake: true,
    noExternal: [/register_all_gradients/],
    esbuildPlugins: [tfjsGradientsPlugin({ bundle: false })],
  },
]);
