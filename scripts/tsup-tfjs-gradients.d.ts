import type { Plugin } from 'esbuild';
/** Bundles tfjs-core's gradient registrations into a package build; see tsup-tfjs-gradients.js. */
export function tfjsGradientsPlugin(): Plugin;
