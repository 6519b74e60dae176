import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradient of StridedSlice, which tfjs 4.22 does not register: every output element came from
 * x[loc * strides + begin] (in the un-shrunk processing shape), so dx scatters dy back to those places.
 */
export const stridedSliceGradConfig: tf.GradConfig = {
  kernelName: tf.StridedSlice,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const a = attrs as unknown as tf.StridedSliceAttrs;
    const info = tf.slice_util.sliceInfo(
      x.shape,
      a.begin,
      a.end,
      a.strides,
      a.beginMask,
      a.endMask,
      a.ellipsisMask,
      a.newAxisMask,
      a.shrinkAxisMask,
    );
    const sparse = info.finalShapeSparse;
    const size = sparse.reduce((p, d) => p * d, 1);
    const rank = x.rank;
    const indices = new Int32Array(size * rank);
    const loc = new Array<number>(rank).fill(0);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < rank; j++)
        indices[i * rank + j] = (loc[j] as number) * (info.strides[j] as number) + (info.begin[j] as number);
      for (let j = rank - 1; j >= 0; j--) {
        loc[j] = (loc[j] as number) + 1;
        if ((loc[j] as number) < (sparse[j] as number)) break;
        loc[j] = 0;
      }
    }
    return {
      x: () =>
        tf.tidy(() =>
          tf.scatterND(
            tf.tensor2d(indices, [size, rank], 'int32'),
            tf.reshape(dy as tf.Tensor, [size]),
            x.shape,
          ),
        ),
    };
  },
};
