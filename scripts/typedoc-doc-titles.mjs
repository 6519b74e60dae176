// A typedoc plugin (typedoc.json's "plugin"): names each project document (docs/*.md) after its first
// `# ` heading instead of its file name, so the site's navigation reads "PRFL in pictures" rather than
// "concepts". A document whose front matter sets `title` keeps that title.
import { Converter } from 'typedoc';

/** The text of the first level-1 heading of a Markdown text, code spans without their backticks. */
function firstHeading(markdown) {
  const match = /^# +(.+?)\s*#*\s*$/m.exec(markdown);
  return match ? match[1].replace(/`([^`]*)`/g, '$1').trim() : undefined;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DOCUMENT, (_context, doc) => {
    const heading = firstHeading(doc.content.map((part) => part.text).join(''));
    const file = doc.project.files.getReflectionPath(doc);
    // Without a front-matter title, typedoc names the document after its file.
    const untitled = file !== undefined && file.replace(/^.*\//, '').replace(/\.md$/i, '') === doc.name;
    if (heading !== undefined && untitled) doc.name = heading;
  });
}
