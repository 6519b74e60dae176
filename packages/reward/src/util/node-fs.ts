/**
 * Node file helpers, loaded through a specifier bundlers cannot see (as @prfl/tensor does), so browser
 * bundles of @prfl/reward never try to resolve `node:fs`. Only called from Node code paths (saving and
 * loading folders); byte-level APIs work everywhere.
 */
import { InvalidArgumentError } from '@prfl/tensor';

function nodeImport<T>(specifier: string): Promise<T> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier) as Promise<T>;
}

export async function nodeFs(): Promise<typeof import('node:fs/promises')> {
  return nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
}

export async function nodePath(): Promise<typeof import('node:path')> {
  return nodeImport<typeof import('node:path')>('node:path');
}

/**
 * Writes a text file atomically: a temporary file in the same folder, fsync, rename over the target. On
 * failure the target is untouched and the temporary file removed.
 */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const fs = await nodeFs();
  const p = await nodePath();
  const target = p.resolve(path);
  const temp = p.join(
    p.dirname(target),
    `.${p.basename(target)}.${process.pid}.${Date.now().toString(36)}.tmp`,
  );
  let handle: import('node:fs/promises').FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx');
    await handle.writeFile(text, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, target);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw new InvalidArgumentError(`${path}: could not be written (${(e as Error).message})`);
  }
}

/** Creates a folder (and its parents) if missing. */
export async function ensureDir(dir: string): Promise<void> {
  const fs = await nodeFs();
  await fs.mkdir(dir, { recursive: true });
}

/** Reads a UTF-8 file, with an error naming the file. */
export async function readText(path: string): Promise<string> {
  const fs = await nodeFs();
  try {
    return await fs.readFile(path, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(`${path}: could not be read (${(e as Error).message})`);
  }
}
