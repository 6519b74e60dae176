/**
 * Ordinary least squares for the few parameters of a trajectory model (at most a dozen): normal
 * equations solved by Gauss-Jordan elimination with partial pivoting, which also gives the diagonal of
 * (X'X)^-1, the variance of each coefficient per unit noise variance.
 */
export interface LeastSquares {
  beta: number[];
  /** Residual sum of squares. */
  rss: number;
  /** Diagonal of (X'X)^-1. */
  varianceFactor: number[];
}

/** Fits y ~ X beta; undefined when the columns are (numerically) dependent. */
export function leastSquares(
  X: readonly (readonly number[])[],
  y: readonly number[],
): LeastSquares | undefined {
  const p = X[0]?.length ?? 0;
  if (p === 0 || X.length < p) return undefined;
  // Augmented [X'X | X'y | I].
  const a: number[][] = Array.from({ length: p }, () => new Array<number>(2 * p + 1).fill(0));
  X.forEach((row, i) => {
    const yi = y[i] as number;
    for (let r = 0; r < p; r++) {
      const xr = row[r] as number;
      if (xr === 0) continue;
      const ar = a[r] as number[];
      for (let c = 0; c < p; c++) ar[c] = (ar[c] as number) + xr * (row[c] as number);
      ar[p] = (ar[p] as number) + xr * yi;
    }
  });
  let scale = 0;
  for (let r = 0; r < p; r++) {
    const ar = a[r] as number[];
    ar[p + 1 + r] = 1;
    scale = Math.max(scale, Math.abs(ar[r] as number));
  }
  for (let c = 0; c < p; c++) {
    let piv = c;
    for (let r = c + 1; r < p; r++)
      if (Math.abs((a[r] as number[])[c] as number) > Math.abs((a[piv] as number[])[c] as number)) piv = r;
    [a[c], a[piv]] = [a[piv] as number[], a[c] as number[]];
    const ac = a[c] as number[];
    const d = ac[c] as number;
    if (Math.abs(d) <= 1e-10 * scale) return undefined;
    for (let k = 0; k < ac.length; k++) ac[k] = (ac[k] as number) / d;
    for (let r = 0; r < p; r++) {
      if (r === c) continue;
      const ar = a[r] as number[];
      const f = ar[c] as number;
      if (f === 0) continue;
      for (let k = 0; k < ar.length; k++) ar[k] = (ar[k] as number) - f * (ac[k] as number);
    }
  }
  const beta = a.map((row) => row[p] as number);
  const varianceFactor = a.map((row, r) => row[p + 1 + r] as number);
  let rss = 0;
  X.forEach((row, i) => {
    let fit = 0;
    for (let c = 0; c < p; c++) fit += (row[c] as number) * (beta[c] as number);
    const e = (y[i] as number) - fit;
    rss += e * e;
  });
  return { beta, rss, varianceFactor };
}
