/** Starts the backend the user asked for (--backend, default wasm; --threads for wasm) once per process. */
import { type BackendInfo, type BackendName, currentBackend, initBackend } from '@prfl/tensor';

export async function startBackend(
  name: BackendName,
  threads: number | 'auto' = 'auto',
): Promise<BackendInfo> {
  const now = currentBackend();
  if (now !== undefined && now.name === name) return now;
  return initBackend(name === 'wasm' ? { backend: name, threads } : { backend: name });
}
