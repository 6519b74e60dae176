// The backend's 2-D matMul peak (lib/matmul-peak.mjs) in a process of its own.
//   node bench/cells/matmul.mjs '{"backend":"wasm","minSeconds":1}'
import * as tf from '@tensorflow/tfjs-core';
import { runCell } from '../lib/cell.mjs';
import { matmulPeak } from '../lib/matmul-peak.mjs';

await runCell(async (spec) => ({ backend: tf.getBackend(), ...(await matmulPeak(spec.minSeconds ?? 1)) }));
