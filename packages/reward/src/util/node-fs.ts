/**
 * Node file helpers, loaded through a specifier bundlers cannot see (as @prfl/tensor does), so browser
 * bundles of @prfl/reward never try to resolve `node:fs`. Only called from Node code paths (saving and
 * loading folders); byte-level APIs work everywhere.
 */
import { InvalidArgumentError, nodeImport, writeFileAtomic } from '@prfl/tensor';

export async function nodeFs(): Promise<typeof import('node:fs/promises')> {
  return nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
}

export async function nodePath(): Promise<typeof import('node:path')> {
  return nodeImport<typeof import('node:path')>('node:path');
}

/** Writes a text file atomically (@prfl/tensor's writeFileAtomic); errors name the file. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  try {
    await writeFileAtomic(path, (write) => write(bytes));
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw e;
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
