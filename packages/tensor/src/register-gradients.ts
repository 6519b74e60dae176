/**
 * Registers every gradient tfjs-core ships plus the ones prfl adds. A side-effect import: importing
 * `@prfl/tensor` does it, and so does `import '@prfl/tensor/register-gradients'` on its own.
 *
 * tfjs-core's own `register_all_gradients` cannot be loaded by plain Node (its ESM imports have no file
 * extensions), so the build bundles it (scripts/tsup-tfjs-gradients.js); the bundled copy shares
 * tfjs-core's global registries.
 */
import '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { registerGradient } from '@tensorflow/tfjs-core';
import { stridedSliceGradConfig } from './gradients/strided-slice.js';

/** The gradients prfl registers on top of tfjs-core's, by kernel name. */
export const PRFL_GRADIENTS = [stridedSliceGradConfig] as const;

for (const config of PRFL_GRADIENTS) registerGradient(config);
