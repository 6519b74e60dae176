/**
 * The machine a benchmark ran on, as the packages' benchmark scripts record it: CPU model and cores,
 * memory, platform and Node, and the load average at the start and the end (other work on the machine
 * slows every number; a ratio of one run is the figure that survives it).
 */
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  platform: string;
  node: string;
  /** 1, 5 and 15 minute load averages (all zero on Windows). */
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
}

/** Load averages rounded to hundredths. */
export function loadAverage(): number[] {
  return os.loadavg().map((l) => Math.round(l * 100) / 100);
}

/** The machine now (call again at the end for `loadAverageAtEnd`). */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    loadAverageAtStart: loadAverage(),
  };
}
