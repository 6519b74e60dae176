/**
 * Atomic file writes in Node: write a temporary file in the target's folder, fsync it, rename it over
 * the target, fsync the folder. A failure at any point removes the temporary file and leaves the
 * target as it was. A process killed mid-write cannot clean up, so the first write into a folder (per
 * process) removes temporary files of ours whose writer is no longer running.
 */
import { InvalidArgumentError } from '../errors.js';
import { nodeImport } from '../node/node-import.js';

/** Appends bytes to the file being written. */
export type ChunkWriter = (chunk: Uint8Array) => Promise<void>;

/**
 * Our temporary names: `.<target>.<pid>.<time base 36>.<random base 36>.tmp`, next to `<target>`. The
 * pid tells later whether the writer still runs.
 */
const TEMP_NAME = /^\.(.+)\.(\d{1,10})\.([0-9a-z]{1,12})\.([0-9a-z]{0,12})\.tmp$/;

/** The target and writer pid of a temporary file name made by writeFileAtomic; undefined for any other name. */
export function parseAtomicTempName(basename: string): { target: string; pid: number } | undefined {
  const m = TEMP_NAME.exec(basename);
  return m ? { target: m[1] as string, pid: Number(m[2]) } : undefined;
}

/**
 * Whether a process with this pid runs on this machine (signal 0 sends nothing; EPERM means it runs
 * under another user). Our own pid counts as running: a write of ours may be in flight.
 */
function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

export interface RemoveStaleTempOptions {
  /** Only temporary files of targets this accepts (default: every target). */
  targets?: (target: string) => boolean;
}

/**
 * Removes the temporary files writeFileAtomic left in `dir` when its process was killed mid-write: regular
 * files named as writeFileAtomic names them (nothing else is touched) whose writer pid no longer runs on
 * this machine. A live writer's file stays, and so does ours. Best effort: files that cannot be removed
 * (no permission, already gone) are skipped. Node only. Resolves to the names removed.
 *
 * A folder shared with another machine is the one case this cannot judge: a pid from there is looked up
 * here.
 */
export async function removeStaleTempFiles(
  dir: string,
  options: RemoveStaleTempOptions = {},
): Promise<string[]> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  const nodePath = await nodeImport<typeof import('node:path')>('node:path');
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const temp = parseAtomicTempName(name);
    if (temp === undefined || isProcessAlive(temp.pid)) continue;
    if (options.targets !== undefined && !options.targets(temp.target)) continue;
    const full = nodePath.join(dir, name);
    try {
      if (!(await fs.lstat(full)).isFile()) continue;
      await fs.rm(full);
      removed.push(name);
    } catch {
      // gone already, or not ours to remove: leave it
    }
  }
  return removed;
}

/** Folders whose stale temporary files this process has already removed (once per folder is enough). */
const cleanedDirs = new Set<string>();

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
  if (!cleanedDirs.has(dir)) {
    cleanedDirs.add(dir);
    await removeStaleTempFiles(dir);
  }
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
