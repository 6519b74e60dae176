/**
 * Builds a scheduler from a diffusers `scheduler_config.json` (parsed), dispatching on `_class_name`.
 */
import { InvalidArgumentError } from '@prfl/tensor';
import { show } from './common.js';
import { DDIMScheduler } from './ddim.js';
import { DDPMScheduler } from './ddpm.js';
import { FlowMatchEulerScheduler } from './flow-match-euler.js';
import { FlowUniPCScheduler } from './flow-unipc.js';

/** Every scheduler this package implements. */
export type AnyScheduler = FlowMatchEulerScheduler | FlowUniPCScheduler | DDIMScheduler | DDPMScheduler;

/** The diffusers class names `schedulerFromConfig` reads. */
export const SCHEDULER_CLASS_NAMES = [
  'FlowMatchDiscreteScheduler',
  'FlowMatchEulerDiscreteScheduler',
  'FlowUniPCMultistepScheduler',
  'DDIMScheduler',
  'DDPMScheduler',
] as const;

/**
 * @throws InvalidArgumentError when the JSON is not an object, `_class_name` is missing or unknown, or a key
 * is unknown or invalid for that class (the message lists what is accepted).
 */
export function schedulerFromConfig(json: unknown): AnyScheduler {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidArgumentError(`schedulerFromConfig: expected a JSON object, got ${show(json)}`);
  }
  const record = json as Record<string, unknown>;
  const className = record['_class_name'];
  switch (className) {
    case 'FlowMatchDiscreteScheduler':
    case 'FlowMatchEulerDiscreteScheduler':
      return FlowMatchEulerScheduler.fromConfig(record);
    case 'FlowUniPCMultistepScheduler':
      return FlowUniPCScheduler.fromConfig(record);
    case 'DDIMScheduler':
      return DDIMScheduler.fromConfig(record);
    case 'DDPMScheduler':
      return DDPMScheduler.fromConfig(record);
    default:
      throw new InvalidArgumentError(
        `schedulerFromConfig: _class_name: expected one of ${SCHEDULER_CLASS_NAMES.join(', ')}, got ${show(className)}`,
      );
  }
}
