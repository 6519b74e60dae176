/**
 * Atomic file writes in Node: write a temporary file in the target's folder, fsync it, rename it over
 * the target, fsync the folder. A failure at any point removes the temporary file and leaves the
 * target as it was.
 */
import { InvalidArgumentError } from '../errors.js';
import { nodeImport } from '../node/node-import.js';

/** Appends bytes to the file being written. */
export type ChunkWriter = (chunk: Uint8Array) => Promise<void>;

/**
 * Writes `path` atomically: `produce` receives a function that appends bytes; the file appears under
 * its name only when `produce` resolves and the data is on disk. Node only (imports node:fs lazily).
 *
 * @throws InvalidArgumentError when the folder cannot be written; any error of `produce` unchanged.
 */
export async function writeFileAtomic(
  path: string,
  produce: (write: ChunkWriter) => Promise<void>,
): Promise<void> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  const nodePath = await nodeImport<typeof import('node:path')>('node:path');
  const target = nodePath.resolve(path);
  const dir = nodePath.dirname(target);
  const suffix = `${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 10)}`;
  const temp = nodePath.join(dir, `.${nodePath.basename(target)}.${suffix}.tmp`);
  let handle: import('node:fs/promises').FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx');
  } catch (e) {
    throw new InvalidArgumentError(`${path}: cannot create a file in ${dir} (${(e as Error).message})`);
  }
  try {
    let position = 0;
    const file = handle;
    await produce(async (chunk) => {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await file.write(
          chunk,
          done,
          Math.min(chunk.length - done, 1 << 30),
          position,
        );
        done += bytesWritten;
        position += bytesWritten;
      }
    });
    await file.sync();
    await file.close();
    handle = undefined;
    await fs.rename(temp, target);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
  // Make the rename durable. Not every platform can fsync a directory (Windows cannot): best effort.
  try {
    const d = await fs.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // ignored on purpose
  }
}
