/**
 * The browser page: what a user's bundler sees. It imports tfjs-core and the *built* @prfl/tensor (the
 * package's normal `import` export, not the `@prfl/source` condition), starts each backend, computes
 * gradients on tensors of over 1000 elements, and reports on `window.__prfl` (see report.ts).
 * Bundled by harness.ts with esbuild; query `?backends=cpu,wasm` limits the backends, `?wasm=<prefix>`
 * sets where the .wasm files are served (default: next to the page), `?threads=auto|<n>` is passed to
 * initBackend, `?auto=0` skips the `backend: 'auto'` checks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describeBackend, initBackend, matMul, shutdownBackend } from '@prfl/tensor';
import type { BackendRun, BrowserReport } from './report.js';

type Name = 'cpu' | 'wasm' | 'webgpu';

const params = new URLSearchParams(location.search);
const backends = (params.get('backends') ?? 'cpu,wasm,webgpu').split(',').filter(Boolean) as Name[];
const wasmPaths = new URL(params.get('wasm') ?? './', location.href).href;
const threadsParam = params.get('threads');
const threads = threadsParam === null ? undefined : threadsParam === 'auto' ? 'auto' : Number(threadsParam);
const checkAuto = params.get('auto') !== '0';

/** Deterministic values that are multiples of 1/2 and small, so float32 sums are exact in any order. */
function values(n: number, seed: number, range: number, step: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((((i * 7 + seed * 13) % (2 * range + 1)) - range) * step) as number;
  return out;
}

/** Plain-JS row-major matMul: [m, k] x [k, n], with optional transposes of the stored operands. */
function refMatMul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i]! : a[i * k + p]!;
        const bv = transB ? b[j * k + p]! : b[p * n + j]!;
        s += av * bv;
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message).split('\n').slice(0, 4).join('\n') : String(e);
}

function maxErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

const [M, K, N] = [40, 36, 48];
const xs = values(40 * 30, 1, 11, 0.25);
const av = values(M * K, 2, 4, 0.5);
const bv = values(K * N, 3, 3, 1);
const wv = values(M * N, 4, 2, 1);
const wantC = refMatMul(av, bv, M, K, N);
const wantDa = refMatMul(wv, bv, M, N, K, false, true); // W B^T: [M, N] x [N, K]
const wantDb = refMatMul(av, wv, K, M, N, true, false); // A^T W: [K, M] x [M, N]

async function runBackend(name: Name): Promise<BackendRun> {
  const t0 = performance.now();
  const info = await initBackend({ backend: name, wasmPaths, threads });
  // Tensors under 1000 elements would run on the CPU by default; make every op use the GPU kernels.
  if (name === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  const before = tf.memory().numTensors;

  const x = tf.tensor(xs, [40, 30]);
  const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(t, t)))(x);
  const dxData = await dx.data();

  const a = tf.tensor(av, [M, K]);
  const b = tf.tensor(bv, [K, N]);
  const w = tf.tensor(wv, [M, N]);
  const c = matMul(a, b);
  const cData = await c.data();
  const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(matMul(p, q), w)))([a, b]);
  const daData = await da!.data();
  const dbData = await db!.data();

  const s = tf.ones([6]);
  const ds = tf.grad((t: tf.Tensor) => tf.sum(tf.stridedSlice(t, [0], [6], [2])))(s);
  const dsData = Array.from(await ds.data());

  tf.dispose([x, dx, a, b, w, c, da!, db!, s, ds]);
  return {
    requested: name,
    active: tf.getBackend(),
    description: describeBackend(info),
    info,
    sizes: { square: xs.length, a: av.length, b: bv.length },
    squareGradMaxErr: maxErr(
      dxData,
      Array.from(xs, (v) => 2 * v),
    ),
    matMulMaxErr: maxErr(cData, wantC),
    matMulGradAMaxErr: maxErr(daData, wantDa),
    matMulGradBMaxErr: maxErr(dbData, wantDb),
    stridedSliceGrad: dsData,
    flags: { ...tf.env().features },
    tensorsLeaked: tf.memory().numTensors - before,
    ms: Math.round(performance.now() - t0),
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const report: BrowserReport = {
    userAgent: navigator.userAgent,
    secureContext: window.isSecureContext,
    crossOriginIsolated: window.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    hasNavigatorGpu: 'gpu' in navigator,
    gradientsRegistered: Object.fromEntries(
      ['Sum', 'Multiply', 'BatchMatMul', 'StridedSlice'].map((k) => [k, tf.getGradient(k) != null]),
    ),
    runs: [],
    errors: [],
    totalMs: 0,
  };
  window.__prfl = report;
  for (const name of backends) {
    try {
      report.runs.push(await runBackend(name));
    } catch (e) {
      report.errors.push(`${name}: ${errorText(e)}`);
    }
    await shutdownBackend();
  }
  if (checkAuto) await checkAutoBackend(report);
  report.totalMs = Math.round(performance.now() - t0);
  console.log(`prfl browser report: ${JSON.stringify(report)}`);
  window.__prflDone = true;
}

async function checkAutoBackend(report: BrowserReport): Promise<void> {
  try {
    const auto = await initBackend({ backend: 'auto', wasmPaths });
    report.auto = {
      name: auto.name,
      description: describeBackend(auto),
      skipped: auto.skipped,
      adapter: auto.adapter,
    };
    await shutdownBackend();
    const soft = await initBackend({ backend: 'auto', wasmPaths, allowSoftwareGpu: true });
    report.autoSoftware = { name: soft.name, description: describeBackend(soft), adapter: soft.adapter };
    await shutdownBackend();
  } catch (e) {
    report.errors.push(`auto: ${errorText(e)}`);
  }
}

main().catch((e) => {
  window.__prfl?.errors.push(`main: ${errorText(e)}`);
  window.__prflDone = true;
});
