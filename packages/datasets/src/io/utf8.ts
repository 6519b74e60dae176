/**
 * Strict UTF-8 decoding of the text formats (JSONL manifests, meta JSONs, list files, the store's
 * manifest). A lenient decoder turns a corrupt byte into U+FFFD and the damage goes unnoticed until a
 * path or a caption does not match; Python's json.load refuses such a file, and so do we, naming the
 * file (and line) and the byte offset of the first bad sequence.
 */
import { CorruptFileError } from '@prfl/tensor';

const strict = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes `bytes` as UTF-8 (a leading byte-order mark is dropped).
 * @throws CorruptFileError "`where`: not valid UTF-8 (byte N: 0x..)" for any malformed sequence.
 */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return strict.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new CorruptFileError(
      `${where}: not valid UTF-8 (byte ${at}: 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')}); expected UTF-8 text`,
    );
  }
}

/** Offset of the first byte that starts a malformed UTF-8 sequence (bytes.length if none is found). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are malformed too.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return bytes.length;
}
