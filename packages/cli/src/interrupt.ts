/**
 * Ctrl-C: the first SIGINT aborts an AbortController whose signal long work polls between steps (a
 * training job then writes a resumable checkpoint and returns); the second one exits at once with 130.
 */
import type { CliIo } from './io.js';
import { InterruptedError } from './errors.js';

export interface Interrupt {
  readonly signal: AbortSignal;
  /** Stops listening for SIGINT. */
  dispose(): void;
}

export function installInterrupt(io: Pick<CliIo, 'signals' | 'stderr' | 'exit'>): Interrupt {
  const controller = new AbortController();
  let count = 0;
  const onSigint = () => {
    count++;
    if (count === 1) {
      io.stderr.write('\nprfl: stopping at the next step (press Ctrl-C again to exit now)\n');
      controller.abort(new InterruptedError('interrupted'));
    } else {
      io.stderr.write('\nprfl: exiting now\n');
      io.exit(130);
    }
  };
  io.signals.on('SIGINT', onSigint);
  return {
    signal: controller.signal,
    dispose: () => {
      io.signals.off('SIGINT', onSigint);
    },
  };
}

/** Throws InterruptedError when the signal was aborted (call between steps). */
export function throwIfInterrupted(signal: AbortSignal | undefined, what = 'interrupted'): void {
  if (signal?.aborted) throw new InterruptedError(what);
}
