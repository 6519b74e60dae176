/**
 * Loads a Node built-in at run time through a specifier bundlers cannot see, so browser bundles never
 * try to resolve `node:fs` (as @prfl/tensor does internally). Only called on Node code paths.
 */
export function nodeImport<T>(specifier: string): Promise<T> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier) as Promise<T>;
}
