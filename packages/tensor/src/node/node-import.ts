/**
 * Loads a Node built-in (or a Node-only package) at run time through a specifier bundlers cannot see, so
 * browser bundles of @prfl/tensor never try to resolve `node:fs` and friends (esbuild refuses them,
 * webpack fails on them). Only called on Node code paths.
 */
export function nodeImport<T>(specifier: string): Promise<T> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier) as Promise<T>;
}
