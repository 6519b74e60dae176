/**
 * A Vite plugin that serves two folders of the repository next to the page, under fixed URL prefixes:
 *
 *   weights/    the shipped models of @prfl/pretrained (packages/pretrained/weights, ~6.6 MB)
 *   tfjs-wasm/  the .wasm binaries of @tensorflow/tfjs-backend-wasm
 *
 * `vite dev` and `vite preview` answer them from a middleware; `vite build` copies them into dist/.
 * Both are found through Node's module resolution, so they are whatever the workspace installed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Connect, Plugin } from 'vite';

const require = createRequire(import.meta.url);

export interface AssetFolder {
  /** URL prefix relative to the page, without slashes. */
  prefix: string;
  dir: string;
  /** Which files of `dir` to serve (relative paths, '/' separated). */
  include: (file: string) => boolean;
}

export function assetFolders(): AssetFolder[] {
  const pretrained = path.dirname(require.resolve('@prfl/pretrained/package.json'));
  const wasm = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  return [
    { prefix: 'weights', dir: path.join(pretrained, 'weights'), include: () => true },
    { prefix: 'tfjs-wasm', dir: path.join(wasm, 'dist'), include: (f) => f.endsWith('.wasm') },
  ];
}

/** Every file under `dir`, as relative '/'-separated paths. */
function listFiles(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const child = rel === '' ? e.name : `${rel}/${e.name}`;
    return e.isDirectory() ? listFiles(dir, child) : [child];
  });
}

const MIME: Record<string, string> = {
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

function middleware(folders: AssetFolder[]): Connect.NextHandleFunction {
  return (req, res, next) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    for (const folder of folders) {
      const start = `/${folder.prefix}/`;
      const at = pathname.indexOf(start);
      if (at < 0) continue;
      const rel = pathname.slice(at + start.length);
      const file = path.resolve(folder.dir, rel);
      if (
        !file.startsWith(folder.dir + path.sep) ||
        !folder.include(rel) ||
        !statSync(file, { throwIfNoEntry: false })?.isFile()
      ) {
        res.statusCode = 404;
        res.end(`not found: ${pathname}`);
        return;
      }
      res.setHeader('Content-Type', MIME[path.extname(file)] ?? 'application/octet-stream');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      res.end(readFileSync(file));
      return;
    }
    next();
  };
}

export function localAssets(folders: AssetFolder[] = assetFolders()): Plugin {
  return {
    name: 'prfl-local-assets',
    configureServer(server) {
      server.middlewares.use(middleware(folders));
    },
    generateBundle() {
      for (const folder of folders) {
        for (const rel of listFiles(folder.dir).filter(folder.include)) {
          this.emitFile({
            type: 'asset',
            fileName: `${folder.prefix}/${rel}`,
            source: readFileSync(path.join(folder.dir, rel)),
          });
        }
      }
    },
  };
}
