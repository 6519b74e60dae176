export interface SmokeResult {
  timesteps: number[];
  sample: number[];
  gradient: number[];
  leakedTensors: number;
}
export function smokeLoop(
  tf: unknown,
  exports: { FlowUniPCScheduler: unknown; schedulerFromConfig: unknown },
): Promise<SmokeResult>;
