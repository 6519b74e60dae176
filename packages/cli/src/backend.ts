/** Starts the backend the user asked for (--backend, default wasm; --threads for wasm) once per process. */
import { type BackendInfo, type BackendName, currentBackend, initBackend } from '@prfl/tensor';

export async function startBackend(
  name: BackendName,
  threads: number | 'auto' = 'auto',
): Promise<BackendInfo> {
  const now = currentBackend();
  // The running backend serves when it is the one asked for (for wasm: with the thread count asked for).
  const sameThreads = name !== 'wasm' || threads === 'auto' || now?.wasm?.threads === threads;
  if (now !== undefined && now.name === name && sameThreads) return now;
  return initBackend(name === 'wasm' ? { backend: name, threads } : { backend: name });
}
