// Checks every relative link of the documentation: README.md, docs/*.md, packages/*/README.md,
// examples/README.md and examples/*/README.md (or the Markdown files given as arguments). A link must
// point at a file or folder inside the repository, and a #fragment at a heading (GitHub's anchor rules)
// or an HTML id of the target Markdown file. Links with a scheme (https:, mailto:) are not fetched.
// Prints every broken link as file:line and exits 1 if there is one. No dependencies.
//
//   node scripts/check-doc-links.mjs [file.md ...]
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

function defaultFiles() {
  const files = ['README.md'];
  const inDir = (dir, pick) => {
    const abs = path.join(root, dir);
    if (!existsSync(abs)) return [];
    return readdirSync(abs, { withFileTypes: true })
      .filter(pick)
      .map((e) => e.name)
      .sort();
  };
  for (const name of inDir('docs', (e) => e.isFile() && e.name.endsWith('.md'))) files.push(`docs/${name}`);
  for (const top of ['packages', 'examples']) {
    if (existsSync(path.join(root, top, 'README.md'))) files.push(`${top}/README.md`);
    for (const name of inDir(top, (e) => e.isDirectory())) {
      if (existsSync(path.join(root, top, name, 'README.md'))) files.push(`${top}/${name}/README.md`);
    }
  }
  return files;
}

/** The lines of a Markdown file with fenced code blocks blanked (line numbers kept). */
function proseLines(text) {
  const lines = text.split(/\r?\n/);
  let fence = null;
  return lines.map((line) => {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && /^ {0,3}[`~]+\s*$/.test(line)) {
        fence = null;
      }
      return '';
    }
    if (m) {
      fence = m[1];
      return '';
    }
    return line;
  });
}

/** Replaces inline code spans by spaces, or by their content when keep is true. */
function stripCodeSpans(line, keep = false) {
  return line.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (all, _ticks, body) =>
    keep ? body.trim() : ' '.repeat(all.length),
  );
}

/** GitHub's anchor for a heading's source text (github-slugger). */
function slug(heading) {
  let text = heading.replace(/\\([^\w\s])/g, '$1');
  const codes = [];
  text = text.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_all, _ticks, body) => {
    codes.push(body.trim());
    return `\uE000${codes.length - 1}\uE000`;
  });
  text = text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/\*+/g, '')
    .replace(/(^|[^\p{L}\p{N}])_+|_+(?=[^\p{L}\p{N}]|$)/gu, '$1');
  text = text.replace(/\uE000(\d+)\uE000/g, (_all, i) => codes[Number(i)]);
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map();

/** Every anchor a Markdown file defines: headings (with GitHub's -1, -2 suffixes) and HTML ids. */
function anchorsOf(file) {
  if (anchorCache.has(file)) return anchorCache.get(file);
  const lines = proseLines(readFileSync(file, 'utf8'));
  const anchors = new Set();
  const seen = new Map();
  const add = (base) => {
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  };
  lines.forEach((line, i) => {
    const atx = /^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$/.exec(line);
    if (atx) {
      add(slug(atx[1] ?? ''));
    } else if (/^ {0,3}(=+|-+)\s*$/.test(line) && i > 0) {
      const prev = lines[i - 1];
      if (prev.trim() !== '' && !/^ {0,3}([#>|*+-]|\d+[.)])/.test(prev)) add(slug(prev));
    }
    for (const m of stripCodeSpans(line).matchAll(/<[a-z][^>]*?\s(?:id|name)\s*=\s*["']([^"']+)["']/gi)) {
      anchors.add(m[1]);
    }
  });
  anchorCache.set(file, anchors);
  return anchors;
}

/** [line number, destination] of every inline link, image and link reference definition. */
function linksOf(text) {
  const out = [];
  proseLines(text).forEach((raw, i) => {
    const line = stripCodeSpans(raw);
    const def = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
    if (def) out.push([i + 1, def[1]]);
    const inline =
      /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^\s)]*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g;
    for (const m of line.matchAll(inline)) out.push([i + 1, m[1]]);
  });
  return out.map(([line, dest]) => [line, dest.replace(/^<(.*)>$/, '$1')]);
}

function check(rel) {
  const file = path.join(root, rel);
  const problems = [];
  const links = linksOf(readFileSync(file, 'utf8'));
  for (const [line, dest] of links) {
    const where = `${rel}:${line}`;
    if (dest === '') {
      problems.push(`${where}: empty link`);
      continue;
    }
    if (/^[a-z][a-z\d+.-]*:/i.test(dest) || dest.startsWith('//')) continue;
    const hash = dest.indexOf('#');
    let target = hash < 0 ? dest : dest.slice(0, hash);
    const fragment = hash < 0 ? null : dest.slice(hash + 1);
    try {
      target = decodeURIComponent(target.split('?')[0]);
    } catch {
      problems.push(`${where}: ${dest}: bad percent-encoding`);
      continue;
    }
    let resolved = file;
    if (target.startsWith('/')) resolved = path.join(root, target);
    else if (target !== '') resolved = path.resolve(path.dirname(file), target);
    const inside = path.relative(root, resolved);
    if (inside.startsWith('..') || path.isAbsolute(inside)) {
      problems.push(`${where}: ${dest}: points outside the repository`);
      continue;
    }
    if (!existsSync(resolved)) {
      problems.push(`${where}: ${dest}: no such file or folder (${inside || '.'})`);
      continue;
    }
    if (fragment === null) continue;
    let anchorFile = resolved;
    if (statSync(resolved).isDirectory()) anchorFile = path.join(resolved, 'README.md');
    if (!anchorFile.toLowerCase().endsWith('.md') || !existsSync(anchorFile)) {
      if (/^L\d+(-L\d+)?$/.test(fragment)) continue;
      problems.push(`${where}: ${dest}: #${fragment} in a file that is not Markdown`);
      continue;
    }
    let anchor = fragment;
    try {
      anchor = decodeURIComponent(fragment);
    } catch {}
    if (!anchorsOf(anchorFile).has(anchor)) {
      problems.push(`${where}: ${dest}: no heading or id "${anchor}" in ${path.relative(root, anchorFile)}`);
    }
  }
  return { links: links.length, problems };
}

const files =
  process.argv.length > 2
    ? process.argv.slice(2).map((f) => path.relative(root, path.resolve(f)))
    : defaultFiles();
let total = 0;
const problems = [];
for (const rel of files) {
  if (!existsSync(path.join(root, rel))) {
    problems.push(`${rel}: file not found`);
    continue;
  }
  const r = check(rel);
  total += r.links;
  problems.push(...r.problems);
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(`check-doc-links: ${problems.length} broken of ${total} links in ${files.length} files`);
  process.exit(1);
}
console.log(`check-doc-links: ${total} links in ${files.length} files, all resolve`);
