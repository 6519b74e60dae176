/**
 * Progress of a long stage as text: done/total, rate, elapsed time and an ETA from the stage's own pace.
 * Plain lines (one per report) so the output reads the same in a terminal, a log file and CI.
 */

/** m:ss or h:mm:ss. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/**
 * Estimated time left from the pace so far; `doneAtStart` is where the measured time began (a resumed
 * stage starts part-way).
 */
export function eta(done: number, total: number, elapsedMs: number, doneAtStart = 0): number {
  if (done - doneAtStart <= 0) return Number.NaN;
  return (elapsedMs / (done - doneAtStart)) * Math.max(0, total - done);
}

/** "stage  120/6000  2%  elapsed 0:31  eta 25:12  loss 0.412" */
export function progressLine(
  stage: string,
  done: number,
  total: number,
  elapsedMs: number,
  extra: Readonly<Record<string, number | string | undefined>> = {},
  doneAtStart = 0,
): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  const parts = [
    stage.padEnd(16),
    `${String(done).padStart(String(total).length)}/${total}`,
    `${String(pct).padStart(3)}%`,
    `elapsed ${formatDuration(elapsedMs)}`,
    `eta ${formatDuration(eta(done, total, elapsedMs, doneAtStart))}`,
  ];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) continue;
    parts.push(`${k} ${typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v}`);
  }
  return parts.join('  ');
}
