/**
 * File helpers shared by the formats: atomic writes (temporary file, fsync, rename, fsync of the
 * folder), the names of the temporary files they leave when killed, and bounded reads whose errors name
 * the missing path.
 */
import {
  CorruptFileError,
  InvalidArgumentError,
  writeFileAtomic as writeFileAtomicStreaming,
} from '@prfl/tensor';
import { node } from './node.js';

/**
 * The parts of a temporary file name made by @prfl/tensor's writeFileAtomic, which writes
 * `.<target>.<pid>.<time base 36>.<random base 36>.tmp` next to `<target>`; undefined for other names.
 * The writer's pid tells whether a crash left the file behind (see isProcessAlive).
 */
export function parseTempName(basename: string): { target: string; pid: number } | undefined {
  const m = /^\.(.+)\.(\d{1,10})\.[0-9a-z]{1,12}\.[0-9a-z]{0,12}\.tmp$/.exec(basename);
  if (!m) return undefined;
  return { target: m[1] as string, pid: Number(m[2]) };
}

/**
 * Whether a process with this pid runs on this machine: signal 0 checks without sending anything.
 * EPERM means it exists under another user. Our own pid counts as alive (a write of ours may be in flight).
 */
export function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes `bytes` to `path` atomically (@prfl/tensor's writeFileAtomic: temporary file, fsync, rename,
 * fsync of the folder): the file appears under its name only complete, or not at all (a crash leaves at
 * most a temporary file named as `tempName` makes them, which readers ignore).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  await writeFileAtomicStreaming(path, (write) => write(data));
}

/** fsync of a folder, so a rename in it is durable (best effort: some platforms cannot). */
export async function syncDir(dir: string): Promise<void> {
  const { fs } = await node();
  try {
    const h = await fs.open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Windows cannot open a folder for fsync.
  }
}

/**
 * Reads a whole file; a missing file is an InvalidArgumentError that names the path (and `what` it is).
 * With `maxBytes`, a larger file is refused before it is read (a CorruptFileError naming the sizes).
 */
export async function readFileNamed(path: string, what: string, maxBytes?: number): Promise<Uint8Array> {
  const { fs } = await node();
  try {
    if (maxBytes !== undefined) {
      const size = (await fs.stat(path)).size;
      if (size > maxBytes) {
        throw new CorruptFileError(
          `${path}: ${what} of ${size} bytes is larger than the ${maxBytes} accepted (not a file of this format?)`,
        );
      }
    }
    const bytes = new Uint8Array(await fs.readFile(path));
    if (maxBytes !== undefined && bytes.length > maxBytes) {
      throw new CorruptFileError(`${path}: ${what} grew past ${maxBytes} bytes while it was read`);
    }
    return bytes;
  } catch (e) {
    if (e instanceof CorruptFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InvalidArgumentError(`${what}: file not found: ${path}`);
    if (code === 'EISDIR') throw new InvalidArgumentError(`${what}: expected a file, got a folder: ${path}`);
    throw new InvalidArgumentError(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
}
