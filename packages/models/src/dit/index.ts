export {
  I2V_TEXT_LEN,
  ROPE_MAX_POSITIONS,
  ropeSplit,
  validateWanDiTConfig,
  WAN_DIT_DEFAULTS,
  WAN_DIT_PRESETS,
  wanDiTConfig,
  wanDiTConfigFromJson,
  wanDiTConfigToJson,
  wanDiTParameterCount,
} from './config.js';
export type { WanDiTConfig, WanDiTPresetName, WanModelType } from './config.js';
export { gelu, geluTanh, silu } from './activations.js';
export {
  attention,
  defaultAttentionLayout,
  mergeHeads,
  splitHeads,
  splitHeadsTransposed,
} from './attention.js';
export type { AttentionLayout } from './attention.js';
export { patchify, sinusoidalEmbedding, unpatchify } from './embeddings.js';
export type { PatchGrid } from './embeddings.js';
export { embedConditions, embedPatches, textKeyBias, wanBlock, wanHead } from './forward.js';
export type { LinearAdapter, WanDiTContext, WeightLookup } from './forward.js';
export { layerNorm, rmsNorm } from './norm.js';
export { wanDiTParamSpecs } from './params.js';
export type { ParamGroup, ParamInit, ParamLayout, ParamSpec } from './params.js';
export { applyRope, defaultPairSwap, ROPE_THETA, ropeTables } from './rope.js';
export type { PairSwap, RopeTables } from './rope.js';
export { checkWeights, WanDiT, WanDiTBackbone, wanDiTBackboneParamSpecs } from './model.js';
export type { WanDiTOptions } from './model.js';
export { wanDiTReplica } from './replica.js';
export type { WanDiTReplicaSpec } from './replica.js';
export {
  checkStateDictShapes,
  fromTorchLayout,
  stateDictFromVariables,
  toTorchLayout,
  weightsFromStateDict,
} from './state-dict.js';
export type { StateDict } from './state-dict.js';
export {
  loadWanDiT,
  loadWanDiTFrom,
  loadWanDiTFromBytes,
  saveWanDiT,
  serializeWanDiT,
  WAN_CONFIG_FILE,
  WAN_INDEX_FILE,
  WAN_WEIGHTS_FILE,
  WAN_WEIGHTS_PREFIX,
} from './checkpoint.js';
export type { LoadWanDiTOptions, SavedWanDiT, SaveWanDiTOptions } from './checkpoint.js';
export type { WanDiTSegmentChain, WanDiTSegmentOptions } from './segments.js';
export { wanDiTFlops } from './flops.js';
export type { WanDiTFlops } from './flops.js';
