/**
 * File helpers shared by the formats: atomic writes (temporary file, fsync, rename, fsync of the
 * folder) and reads whose errors name the missing path.
 */
import {
  CorruptFileError,
  InvalidArgumentError,
  writeFileAtomic as writeFileAtomicStreaming,
} from '@prfl/tensor';
import { node } from './node.js';

/** The name of a temporary file next to `target`; stores ignore names of this form when they open. */
export function tempName(basename: string): string {
  const suffix = `${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 10)}`;
  return `.${basename}.${suffix}.tmp`;
}

/** True for names made by `tempName`. */
export function isTempName(basename: string): boolean {
  return basename.startsWith('.') && basename.endsWith('.tmp');
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

/** Reads a whole file; a missing file is an InvalidArgumentError that names the path (and `what` it is). */
export async function readFileNamed(path: string, what: string): Promise<Uint8Array> {
  const { fs } = await node();
  try {
    return new Uint8Array(await fs.readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InvalidArgumentError(`${what}: file not found: ${path}`);
    if (code === 'EISDIR') throw new InvalidArgumentError(`${what}: expected a file, got a folder: ${path}`);
    throw new InvalidArgumentError(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
}

/** Reads and parses a JSON file; errors name the path. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readFileNamed(path, what));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CorruptFileError(`${path}: ${what} is not valid JSON (${(e as Error).message})`);
  }
}
