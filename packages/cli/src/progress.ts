/**
 * Progress of long work, by phase. On a terminal each phase gets a bar with its ETA (cli-progress);
 * anywhere else (a pipe, a log file, CI) plain lines, at most one every ~2 s per phase plus its first and
 * last; nothing with --quiet. Always on stderr, so stdout holds only results (and the JSON of --json).
 */
import cliProgress from 'cli-progress';
import type { TextSink } from './io.js';

export type ProgressMetrics = Readonly<Record<string, number | string | undefined>>;

export interface Progress {
  /** Starts a phase of `total` units; ends the previous one. */
  phase(name: string, total: number): void;
  /** Units done in the current phase, and metrics to show beside the bar. */
  update(done: number, metrics?: ProgressMetrics): void;
  /** Ends the current phase. */
  end(): void;
  /** A message (above the bars on a terminal); nothing with --quiet. */
  log(line: string): void;
  /** Ends everything (restores the cursor). */
  close(): void;
}

export type ProgressMode = 'bars' | 'lines' | 'quiet';

/** m:ss or h:mm:ss ('?' when unknown). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function formatMetrics(metrics: ProgressMetrics | undefined): string {
  if (metrics === undefined) return '';
  return Object.entries(metrics)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : String(v)}`)
    .join('  ');
}

/** "generate  3/8  37%  elapsed 0:12  eta 0:20  loss 0.4120" */
export function progressText(
  name: string,
  done: number,
  total: number,
  elapsedMs: number,
  metrics?: ProgressMetrics,
): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  const etaMs = done > 0 ? (elapsedMs / done) * Math.max(0, total - done) : Number.NaN;
  const extra = formatMetrics(metrics);
  return [
    name,
    `${done}/${total}`,
    `${pct}%`,
    `elapsed ${formatDuration(elapsedMs)}`,
    `eta ${formatDuration(etaMs)}`,
    ...(extra === '' ? [] : [extra]),
  ].join('  ');
}

/** Bars only where the sink is a real terminal stream cli-progress can move the cursor on. */
export function progressMode(sink: TextSink, quiet: boolean): ProgressMode {
  if (quiet) return 'quiet';
  const tty = sink.isTTY === true && typeof (sink as { cursorTo?: unknown }).cursorTo === 'function';
  return tty ? 'bars' : 'lines';
}

export interface ProgressOptions {
  mode: ProgressMode;
  /** Minimum time between two plain lines of one phase (default 2000 ms). */
  intervalMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export function createProgress(sink: TextSink, options: ProgressOptions): Progress {
  if (options.mode === 'quiet') {
    return { phase() {}, update() {}, end() {}, log() {}, close() {} };
  }
  return options.mode === 'bars' ? barProgress(sink) : lineProgress(sink, options);
}

function lineProgress(sink: TextSink, options: ProgressOptions): Progress {
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? 2000;
  interface Phase {
    name: string;
    total: number;
    start: number;
    /** When the last line was printed, and at which count. */
    last: number;
    printed: number;
    done: number;
    metrics: ProgressMetrics | undefined;
  }
  let current: Phase | undefined;
  const print = (p: Phase) => {
    sink.write(`${progressText(p.name, p.done, p.total, now() - p.start, p.metrics)}\n`);
    p.last = now();
    p.printed = p.done;
  };
  const end = () => {
    // The last count is always shown once.
    if (current !== undefined && current.done > 0 && current.printed !== current.done) print(current);
    current = undefined;
  };
  return {
    phase(name, total) {
      end();
      current = {
        name,
        total,
        start: now(),
        last: Number.NEGATIVE_INFINITY,
        printed: -1,
        done: 0,
        metrics: undefined,
      };
    },
    update(done, metrics) {
      if (current === undefined) return;
      current.done = done;
      current.metrics = metrics ?? current.metrics;
      const finished = done >= current.total && current.printed !== done;
      if (finished || now() - current.last >= interval) print(current);
    },
    end,
    log(line) {
      sink.write(`${line}\n`);
    },
    close: end,
  };
}

function barProgress(sink: TextSink): Progress {
  const multi = new cliProgress.MultiBar(
    {
      stream: sink as NodeJS.WritableStream,
      format:
        '{phase} |{bar}| {percentage}% {value}/{total} | elapsed {duration_formatted} | eta {eta_formatted} {metrics}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 20,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  let closed = false;
  const end = () => {
    if (bar !== undefined) {
      bar.stop();
      bar = undefined;
    }
  };
  return {
    phase(name, total) {
      end();
      if (closed) return;
      bar = multi.create(Math.max(total, 1), 0, { phase: name.padEnd(10), metrics: '' });
    },
    update(done, metrics) {
      bar?.update(done, { metrics: formatMetrics(metrics) });
    },
    end,
    log(line) {
      multi.log(`${line}\n`);
    },
    close() {
      if (closed) return;
      closed = true;
      end();
      multi.stop();
    },
  };
}
