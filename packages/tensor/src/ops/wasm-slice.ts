/**
 * A faster Slice (and SplitV) kernel for tfjs's wasm backend, installed by initBackend when it starts wasm.
 *
 * tfjs-backend-wasm 4.22 implements Slice in JavaScript on top of `backend.readSync`, which copies the
 * *whole* input out of the wasm heap on every call; SplitV into n parts therefore copies the input n
 * times. The per-head attention splits q, k and v into heads that way, and slices run in every concat
 * gradient: on the mid preset that was ~10% of a forward pass (a [320, 384] split into 6 heads took
 * 2.6 ms instead of 0.2 ms). This kernel reads through a view of the heap instead; results are identical
 * (a copy of the same elements). Installing is idempotent.
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

let installed = false;

function sliceKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string' || x.dtype === 'complex64') return original(args);
    const { begin, size } = args.attrs as unknown as { begin: number[]; size: number[] };
    const backend = args.backend as unknown as WasmBackendLike;
    const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size) as [
      number[],
      number[],
    ];
    // makeOutput may grow the wasm memory, which detaches older views: take the views after it.
    const out = backend.makeOutput(s, x.dtype);
    const xv = backend.typedArrayFromHeap(x);
    const ov = backend.typedArrayFromHeap(out);
    const strides = tf.util.computeStrides(x.shape);
    if (tf.slice_util.isSliceContinous(x.shape, b, s)) {
      const offset = tf.slice_util.computeFlatOffset(b, strides);
      ov.set(xv.subarray(offset, offset + tf.util.sizeFromShape(s)));
      return out;
    }
    // Copy the innermost contiguous runs, walking the outer indices like an odometer.
    const rank = x.shape.length;
    const inner = s[rank - 1] as number;
    const outer = tf.util.sizeFromShape(s.slice(0, -1));
    const index = new Array<number>(rank - 1).fill(0);
    let o = 0;
    for (let r = 0; r < outer; r++) {
      let offset = b[rank - 1] as number;
      for (let d = 0; d < rank - 1; d++)
        offset += ((b[d] as number) + (index[d] as number)) * (strides[d] as number);
      ov.set(xv.subarray(offset, offset + inner), o);
      o += inner;
      for (let d = rank - 2; d >= 0; d--) {
        index[d] = (index[d] as number) + 1;
        if ((index[d] as number) < (s[d] as number)) break;
        index[d] = 0;
      }
    }
    return out;
  };
}

function splitKernel(slice: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { numOrSizeSplits, axis } = args.attrs as unknown as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = [...x.shape];
      size[ax] = n;
      const part = slice({ inputs: { x }, attrs: { begin: [...begin], size }, backend: args.backend });
      begin[ax] = (begin[ax] as number) + n;
      return part as tf.TensorInfo;
    });
  };
}

/**
 * Replaces the wasm backend's Slice and SplitV kernels with heap-view versions (see the file comment).
 * Does nothing unless the wasm backend is registered; safe to call repeatedly.
 */
export function installFastWasmSlice(): void {
  if (installed) return;
  const slice = tf.getKernel('Slice', 'wasm');
  const split = tf.getKernel('SplitV', 'wasm');
  if (slice === undefined || split === undefined) return;
  const fast = sliceKernel(slice.kernelFunc);
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ ...slice, kernelFunc: fast });
  tf.unregisterKernel('SplitV', 'wasm');
  tf.registerKernel({ ...split, kernelFunc: splitKernel(fast) });
  installed = true;
}
