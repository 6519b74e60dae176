/** safetensors read/write for tfjs: the public names (re-exported by the package entry point). */
export type { LoadedDtype, SafetensorsDtype } from './dtypes.js';
export { dtypeByteSize, isSafetensorsDtype, loadedDtype, SAFETENSORS_DTYPES } from './dtypes.js';
export { f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits } from './convert.js';
export type { SafetensorsHeader, SafetensorsTensorInfo } from './format.js';
export { MAX_HEADER_BYTES } from './format.js';
export type { DecodedArray, RawTensor } from './raw.js';
export { decodeRaw, rawToTensor } from './raw.js';
export type { ByteSource, SafetensorsInput } from './source.js';
export { blobSource, bytesSource, fileSource, responseSource, toByteSource } from './source.js';
export type {
  LoadSafetensorsOptions,
  OpenSafetensorsOptions,
  SafetensorsFile,
  TensorReader,
} from './read.js';
export { loadSafetensors, loadTensors, openSafetensors } from './read.js';
export type { FloatStorageDtype, RawTensorInput, SerializeOptions, TensorInput, TensorMap } from './write.js';
export { saveSafetensors, serializeSafetensors } from './write.js';
export type {
  SavedCheckpoint,
  SaveShardedOptions,
  ShardedSafetensors,
  ShardIndex,
  ShardOpener,
} from './sharded.js';
export {
  openShardedSafetensors,
  openShardedSafetensorsFrom,
  parseShardIndex,
  saveShardedSafetensors,
} from './sharded.js';
export {
  conv1dWeightFromTorch,
  conv1dWeightToTorch,
  conv2dWeightFromTorch,
  conv2dWeightToTorch,
  conv3dWeightFromTorch,
  conv3dWeightToTorch,
  linearWeightFromTorch,
  linearWeightToTorch,
} from './layout.js';
