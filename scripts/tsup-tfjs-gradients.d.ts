import type { Plugin } from 'esbuild';
/** Bundles (Node build) or externalises with a .js path (browser build) tfjs-core's gradient registrations; see tsup-tfjs-gradients.js. */
export function tfjsGradientsPlugin(options?: { bundle?: boolean }): Plugin;
