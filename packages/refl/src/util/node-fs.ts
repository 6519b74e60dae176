/**
 * Node file helpers, loaded through @prfl/tensor's nodeImport (a specifier bundlers cannot see), so a
 * browser bundle of @prfl/refl never tries to resolve `node:fs`. Only checkpoint code calls them.
 */
import { InvalidArgumentError, nodeImport, writeFileAtomic } from '@prfl/tensor';

export async function nodeFs(): Promise<typeof import('node:fs/promises')> {
  return nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
}

export async function nodePath(): Promise<typeof import('node:path')> {
  return nodeImport<typeof import('node:path')>('node:path');
}

/** Writes a text file atomically (temp file, fsync, rename); errors name the file. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  try {
    await writeFileAtomic(path, (write) => write(bytes));
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw e;
    throw new InvalidArgumentError(`${path}: could not be written (${(e as Error).message})`);
  }
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
