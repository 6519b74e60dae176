import { defineConfig } from 'vite';
import { localAssets } from './assets-plugin.js';

/**
 * The page is bundled from the *built* packages (their `browser`/`import` exports, as a user's project
 * would see them); run `npm run build` at the repository root first. The shipped weights and tfjs's .wasm
 * binaries are served from the repository's own node_modules (see assets-plugin.ts): nothing is downloaded.
 *
 * COOP/COEP make the page cross-origin isolated, so tfjs's wasm backend may use threads where the
 * machine has cores to spare. Its threaded build runs a function's source text in its workers, which
 * Vite 8's default minifier (Oxc) breaks (`ReferenceError: e is not defined` in the worker); esbuild's
 * minifier keeps it working.
 */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  base: './',
  plugins: [localAssets()],
  resolve: { dedupe: ['@tensorflow/tfjs-core'] },
  server: { headers: isolation, host: '127.0.0.1' },
  preview: { headers: isolation, host: '127.0.0.1' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096, reportCompressedSize: false, minify: 'esbuild' },
});
