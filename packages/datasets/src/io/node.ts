/**
 * Node built-ins loaded at run time through a specifier bundlers cannot see (as @prfl/tensor does), so a
 * browser bundle of @prfl/datasets (MovingShapes, the oracle, the format parsers) never tries to resolve
 * node:fs. Only the file-system functions call these.
 */
import { nodeImport } from '@prfl/tensor';

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');
type FsSync = typeof import('node:fs');
type Readline = typeof import('node:readline');

let cached: Promise<{ fs: Fs; path: Path; fsSync: FsSync; readline: Readline }> | undefined;

/** node:fs/promises, node:path, node:fs and node:readline. */
export function node(): Promise<{ fs: Fs; path: Path; fsSync: FsSync; readline: Readline }> {
  cached ??= Promise.all([
    nodeImport<Fs>('node:fs/promises'),
    nodeImport<Path>('node:path'),
    nodeImport<FsSync>('node:fs'),
    nodeImport<Readline>('node:readline'),
  ]).then(([fs, path, fsSync, readline]) => ({ fs, path, fsSync, readline }));
  return cached;
}
