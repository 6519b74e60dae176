/**
 * Line splitting for the line-based formats (JSONL manifests, .list files), on bytes, with a bound on
 * the length of a line. Splitting bytes rather than decoded text lets every line be decoded strictly
 * (an invalid UTF-8 sequence is reported with its line number), and the bound means a file without
 * newlines cannot make the reader buffer gigabytes before it says anything.
 */
import { CorruptFileError, InvalidArgumentError } from '@prfl/tensor';
import { node } from './node.js';

/** One line: its 1-based number and its bytes without the line ending (\n or \r\n). */
export interface RawLine {
  line: number;
  bytes: Uint8Array;
}

/** Splits a stream of byte chunks into lines; feed it with `push`, finish with `end`. */
export class LineSplitter {
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  private count = 0;

  constructor(
    /** Names the file in errors. */
    private readonly file: string,
    /** Longest line accepted, in bytes (line ending excluded). */
    private readonly maxLineBytes: number,
  ) {}

  /** The complete lines `chunk` finishes. */
  push(chunk: Uint8Array): RawLine[] {
    const out: RawLine[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.take(chunk.subarray(start, nl));
      out.push(this.finish());
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start));
    return out;
  }

  /** The last line when the file does not end with a newline. */
  end(): RawLine[] {
    return this.partBytes > 0 || this.parts.length > 0 ? [this.finish()] : [];
  }

  private take(piece: Uint8Array): void {
    this.partBytes += piece.length;
    // A "\r" may be the first half of a "\r\n" split across chunks, so the limit allows one more byte.
    if (this.partBytes > this.maxLineBytes + 1) {
      throw new CorruptFileError(
        `${this.file}:${this.count + 1}: line longer than ${this.maxLineBytes} bytes (not a file of this format, or a missing line break)`,
      );
    }
    if (piece.length) this.parts.push(piece.slice());
  }

  private finish(): RawLine {
    this.count++;
    let bytes: Uint8Array;
    if (this.parts.length === 1) bytes = this.parts[0] as Uint8Array;
    else {
      bytes = new Uint8Array(this.partBytes);
      let at = 0;
      for (const p of this.parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    if (bytes.length && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > this.maxLineBytes) {
      throw new CorruptFileError(`${this.file}:${this.count}: line longer than ${this.maxLineBytes} bytes`);
    }
    this.parts = [];
    this.partBytes = 0;
    return { line: this.count, bytes };
  }
}

/** Every line of an in-memory file. */
export function splitLines(bytes: Uint8Array, file: string, maxLineBytes: number): RawLine[] {
  const splitter = new LineSplitter(file, maxLineBytes);
  return [...splitter.push(bytes), ...splitter.end()];
}

/**
 * Streams the lines of a file without reading it whole.
 * @throws InvalidArgumentError naming `what` and the path for a missing file or a folder;
 *   CorruptFileError for a line longer than `maxLineBytes`.
 */
export async function* readFileLines(
  path: string,
  what: string,
  maxLineBytes: number,
): AsyncGenerator<RawLine> {
  const { fsSync } = await node();
  const stream = fsSync.createReadStream(path);
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('ready', () => resolve());
      stream.once('error', reject);
    });
  } catch (e) {
    stream.destroy();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InvalidArgumentError(`${what}: file not found: ${path}`);
    if (code === 'EISDIR') throw new InvalidArgumentError(`${what}: expected a file, got a folder: ${path}`);
    throw new InvalidArgumentError(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
  const splitter = new LineSplitter(path, maxLineBytes);
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) yield* splitter.push(chunk);
    yield* splitter.end();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Opening a folder succeeds on Linux; the first read then fails with EISDIR.
    if (code === 'EISDIR') throw new InvalidArgumentError(`${what}: expected a file, got a folder: ${path}`);
    if (typeof code === 'string')
      throw new InvalidArgumentError(`${what}: cannot read ${path} (${(e as Error).message})`);
    throw e;
  } finally {
    stream.destroy();
  }
}
