/** PyTorch checkpoints (torch.save zip archives), read without running code: the public names. */
export { UnsafePickleError } from './errors.js';
export type { TorchReadLimits } from './limits.js';
export { DEFAULT_TORCH_LIMITS } from './limits.js';
export type { LoadTorchOptions, OpenTorchOptions, TorchCheckpoint, TorchTensorInfo } from './read.js';
export { flattenTorchTensors, isTorchCheckpoint, loadTorchCheckpoint, openTorchCheckpoint } from './read.js';
export { stripKeyPrefix, withoutPrefix } from './prefix.js';
export { TORCH_STORAGE_TYPES } from './storage-types.js';
export type { TorchKey, TorchValue } from './values.js';
export { isTorchTensor, TorchTensorRef } from './values.js';
export type { LoadWeightsOptions, OpenWeightsOptions, WeightsFormat } from './weights.js';
export { detectWeightsFormat, loadWeights, openWeights } from './weights.js';
