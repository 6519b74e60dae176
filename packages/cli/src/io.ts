/**
 * Where the command's output goes. The binary uses the process's streams; tests pass strings collectors.
 * Results go to stdout (as one JSON document with --json); progress, warnings and errors go to stderr.
 */

/** A text sink: process.stdout, process.stderr, or a collector. */
export interface TextSink {
  write(text: string): unknown;
  /** A terminal: progress is drawn as bars there. */
  isTTY?: boolean;
  /** Terminal width for the bars. */
  columns?: number;
}

export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  /** Base of relative paths (default process.cwd()). */
  cwd: string;
  /** Where SIGINT comes from (default the process); tests pass an EventEmitter. */
  signals: { on(event: 'SIGINT', f: () => void): unknown; off(event: 'SIGINT', f: () => void): unknown };
  /** Called by a second Ctrl-C (default process.exit). */
  exit: (code: number) => void;
  /** The clock, for run folder names. */
  now: () => Date;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    signals: process,
    exit: (code) => process.exit(code),
    now: () => new Date(),
  };
}

/** Collects what the command writes (for tests and for calling `run` from code). */
export function memorySink(isTTY = false): TextSink & { text: () => string } {
  const parts: string[] = [];
  return {
    write(t: string) {
      parts.push(t);
      return true;
    },
    isTTY,
    text: () => parts.join(''),
  };
}
