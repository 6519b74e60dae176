/**
 * How the command fails. A mistake of the user (a bad option, a config key that does not exist, a file
 * that is not what it should be) prints one line, `prfl: <message>`, and exits with 2; anything else is a
 * bug or an environment failure and prints its stack, exiting with 1. Ctrl-C exits with 130.
 */
import { BackendUnavailableError, CorruptFileError, InvalidArgumentError, PrflError } from '@prfl/tensor';

/** A configuration key, value or file that is wrong; the message names the key (or file), what was expected and what came in. */
export class ConfigError extends PrflError {
  override name = 'ConfigError';
}

/** A command-line mistake that commander does not catch (a missing --prompt, a bad --out extension). */
export class UsageError extends PrflError {
  override name = 'UsageError';
}

/** The run was stopped by Ctrl-C. */
export class InterruptedError extends PrflError {
  override name = 'InterruptedError';
}

/** Exit codes of `prfl`. */
export const EXIT = Object.freeze({
  ok: 0,
  /** An unexpected error (a bug, out of memory, a crashed backend): the stack is printed. */
  failure: 1,
  /** The user's input was wrong: one line says what. */
  usage: 2,
  /** Stopped by Ctrl-C (128 + SIGINT). */
  interrupted: 130,
});

const USER_ERRORS = new Set([
  'ConfigError',
  'UsageError',
  'InvalidArgumentError',
  'CorruptFileError',
  'UnsafePickleError',
  'BackendUnavailableError',
]);

/**
 * True for the errors that are the user's to fix (printed as one line). Checked by class and, since a
 * second copy of @prfl/tensor can be loaded (CJS next to ESM), by name too.
 */
export function isUserError(e: unknown): e is Error {
  if (
    e instanceof ConfigError ||
    e instanceof UsageError ||
    e instanceof InvalidArgumentError ||
    e instanceof CorruptFileError ||
    e instanceof BackendUnavailableError
  ) {
    return true;
  }
  return e instanceof Error && USER_ERRORS.has(e.name);
}

/** The exit code and the text to print on stderr for an error that reached the top. */
export function describeFailure(e: unknown): { code: number; text: string } {
  if (e instanceof InterruptedError || (e instanceof Error && e.name === 'InterruptedError')) {
    return { code: EXIT.interrupted, text: `prfl: ${(e as Error).message}\n` };
  }
  if (isUserError(e)) return { code: EXIT.usage, text: `prfl: ${oneLine(e.message)}\n` };
  const text = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  return { code: EXIT.failure, text: `prfl: unexpected error\n${text}\n` };
}

/** Messages are printed on one line: newlines become "; ". */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, '; ').trim();
}
