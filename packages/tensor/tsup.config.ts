import { defineConfig } from 'tsup';
import { tfjsGradientsPlugin } from '../../scripts/tsup-tfjs-gradients.js';

export default defineConfig({
  entry: ['src/index.ts', 'src/register-gradients.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  splitting: true,
  treeshake: true,
  // tsup would externalise this peer-dependency path; the plugin below bundles it instead.
  noExternal: [/register_all_gradients/],
  esbuildPlugins: [tfjsGradientsPlugin()],
  // The gradients bundled from tfjs-core (see the plugin) must find the engine that the real
  // @tensorflow/tfjs-core made; in CJS output bundled modules would otherwise run before the external
  // require, and the bundled engine copy would win.
  banner: ({ format }) => (format === 'cjs' ? { js: 'require("@tensorflow/tfjs-core");' } : {}),
});
