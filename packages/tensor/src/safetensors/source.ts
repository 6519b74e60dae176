/**
 * Random-access byte sources: what the safetensors reader needs to read a header and then only the
 * tensors asked for, from memory, a file, a Blob or a fetch Response.
 */
import { CorruptFileError, InvalidArgumentError } from '../errors.js';
import { nodeImport } from '../node/node-import.js';

/** Bytes that can be read at any offset. `read` resolves to exactly `length` bytes or rejects. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A name for error messages (a path, a URL, `buffer`). */
  readonly name?: string;
  /** Reads `length` bytes at `offset`; `offset + length` must not exceed `size`. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying resource (a file handle); reads fail afterwards. */
  close?(): Promise<void>;
}

/** Anything openSafetensors accepts: a ByteSource, a Node file path, bytes, a Blob/File or a fetch Response. */
export type SafetensorsInput = ByteSource | string | Uint8Array | ArrayBuffer | Blob | Response;

function checkRange(source: string, size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > size
  ) {
    throw new InvalidArgumentError(
      `${source}: read(offset, length) expected a range within [0, ${size}], got offset ${offset}, length ${length}`,
    );
  }
}

/** A ByteSource over bytes in memory. Reads return views (no copy); do not modify the buffer while reading. */
export function bytesSource(data: Uint8Array | ArrayBuffer, name = 'buffer'): ByteSource {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return {
    size: bytes.byteLength,
    name,
    read(offset, length) {
      checkRange(name, bytes.byteLength, offset, length);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

/** A ByteSource over a Blob (or File): each read slices the Blob, so only the requested bytes are loaded. */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const label =
    name ?? ((blob as { name?: unknown }).name ? String((blob as { name?: unknown }).name) : 'blob');
  return {
    size: blob.size,
    name: label,
    async read(offset, length) {
      checkRange(label, blob.size, offset, length);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.length !== length) {
        throw new CorruptFileError(
          `${label}: expected ${length} bytes at offset ${offset}, got ${bytes.length}`,
        );
      }
      return bytes;
    },
  };
}

/**
 * A ByteSource over a fetch Response. The body is read once into a Blob (which browsers may keep on
 * disk); for a file too large for that, serve it with HTTP range requests and implement ByteSource.
 *
 * @throws InvalidArgumentError for a response whose status is not 2xx.
 */
export async function responseSource(response: Response, name?: string): Promise<ByteSource> {
  const label = name ?? (response.url || 'response');
  if (!response.ok) {
    throw new InvalidArgumentError(
      `${label}: expected a successful response, got HTTP ${response.status} ${response.statusText}`.trim(),
    );
  }
  return blobSource(await response.blob(), label);
}

/**
 * A ByteSource over a file in Node, read with a FileHandle at explicit positions (no whole-file read).
 * `node:fs/promises` is imported on first use, so browser bundles that never call this are unaffected.
 * Call `close()` when done.
 *
 * @throws InvalidArgumentError when the path cannot be opened (missing, a directory, no permission).
 */
export async function fileSource(path: string): Promise<ByteSource> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  let handle: import('node:fs/promises').FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (e) {
    throw new InvalidArgumentError(`${path}: cannot open the file (${(e as Error).message})`);
  }
  let size: number;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new InvalidArgumentError(`${path}: expected a regular file`);
    size = stat.size;
  } catch (e) {
    await handle.close();
    throw e;
  }
  let closed = false;
  return {
    size,
    name: path,
    async read(offset, length) {
      if (closed) throw new InvalidArgumentError(`${path}: read after close()`);
      checkRange(path, size, offset, length);
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(
          out,
          filled,
          Math.min(length - filled, 1 << 30),
          offset + filled,
        );
        if (bytesRead === 0) {
          throw new CorruptFileError(
            `${path}: expected ${length} bytes at offset ${offset}, but the file ended after ${filled} (was it truncated while open?)`,
          );
        }
        filled += bytesRead;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

function isByteSource(input: unknown): input is ByteSource {
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as ByteSource).read === 'function' &&
    typeof (input as ByteSource).size === 'number'
  );
}

/**
 * Turns any SafetensorsInput into a ByteSource: a string is a Node file path, bytes are wrapped, a Blob
 * is sliced on demand, a Response is read into a Blob.
 *
 * @throws InvalidArgumentError for anything else.
 */
export async function toByteSource(input: SafetensorsInput): Promise<ByteSource> {
  if (typeof input === 'string') return fileSource(input);
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return bytesSource(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return blobSource(input);
  if (typeof Response !== 'undefined' && input instanceof Response) return responseSource(input);
  if (isByteSource(input)) return input;
  throw new InvalidArgumentError(
    `source: expected a file path, Uint8Array, ArrayBuffer, Blob, Response or ByteSource {size, read}, got ${Object.prototype.toString.call(input)}`,
  );
}
