/** LoRA adapters for a generator behind @prfl/tensor's VelocityModel contract, in PEFT's names and files. */
export { isLinearAdapterHost } from './adapter-host.js';
export type { AdaptableVelocityModel, LinearAdapter, LinearAdapterHost } from './adapter-host.js';
export { LORA_DEFAULTS, LORA_TARGET_MODULES, loraScaling, resolveLoraOptions } from './config.js';
export type { LoraOptions, ResolvedLoraOptions } from './config.js';
export { LORA_A_SUFFIX, LORA_B_SUFFIX, LoraAdapters } from './lora-adapters.js';
export { PEFT_CONFIG_FILE, parsePeftLoraConfig, peftLoraConfig } from './peft-config.js';
export type { PeftLoraConfig } from './peft-config.js';
export {
  DIFFUSERS_LORA_FILE,
  loadLora,
  loadLoraWeights,
  PEFT_ADAPTER_FILE,
  readLoraFile,
  REFERENCE_DIFFUSERS_LORA_FILE,
  REFERENCE_LORA_FILE,
  saveLora,
} from './peft-files.js';
export type { LoadLoraOptions, LoraFile, LoraFileLayout, SaveLoraOptions } from './peft-files.js';
export {
  assignPeftState,
  DIFFUSERS_KEY_PREFIX,
  loraStateDict,
  PEFT_KEY_PREFIX,
  parsedRank,
  parsePeftState,
  REFERENCE_DIFFUSERS_KEY_PREFIX,
} from './peft-state.js';
export type { ParsedPeftState, PeftAdapterTensors } from './peft-state.js';
export { linearModules, matchesTargetModules } from './targets.js';
export type { LinearModule } from './targets.js';
