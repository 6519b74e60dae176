/** What the browser page (page.ts) reports on `window.__prfl`; read by browser.test.ts. */

/** One backend's results. Every `*MaxErr` is the largest absolute difference from a plain-JS reference. */
export interface BackendRun {
  requested: string;
  /** `tf.getBackend()` after `initBackend`. */
  active: string;
  /** `describeBackend(info)`. */
  description: string;
  info: unknown;
  /** Element counts, to show the tensors were large enough for WebGPU to run its own kernels. */
  sizes: { square: number; a: number; b: number };
  /** d/dx sum(x*x) = 2x. */
  squareGradMaxErr: number;
  /** prfl's matMul forward, C = A B. */
  matMulMaxErr: number;
  /** d/dA and d/dB of sum(W * (A B)): W B^T and A^T W. */
  matMulGradAMaxErr: number;
  matMulGradBMaxErr: number;
  /** d/dx sum(stridedSlice(x)): a gradient prfl registers (tfjs has none). */
  stridedSliceGrad: number[];
  /** tfjs's evaluated environment flags after the run (WASM_HAS_SIMD_SUPPORT, WEBGPU_CPU_FORWARD, ...). */
  flags: Record<string, unknown>;
  /** tfjs tensors alive after the run (leak check). */
  tensorsLeaked: number;
  ms: number;
}

export interface BrowserReport {
  userAgent: string;
  secureContext: boolean;
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  hasNavigatorGpu: boolean;
  /** Whether importing @prfl/tensor registered gradients (tfjs-core's and prfl's), before any backend starts. */
  gradientsRegistered: Record<string, boolean>;
  runs: BackendRun[];
  /** `initBackend({ backend: 'auto' })`. */
  auto?: {
    name: string;
    description: string;
    skipped: Array<{ name: string; reason: string }>;
    adapter?: unknown;
  };
  /** `initBackend({ backend: 'auto', allowSoftwareGpu: true })`. */
  autoSoftware?: { name: string; description: string; adapter?: unknown };
  errors: string[];
  totalMs: number;
}

declare global {
  interface Window {
    __prfl?: BrowserReport;
    __prflDone?: boolean;
  }
}
