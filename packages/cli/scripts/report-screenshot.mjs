// A screenshot of a demo report (the top of the page: tables, curves, the first videos) with Debian's
// chromium, for the docs:
//
//   node scripts/report-screenshot.mjs runs/demo-<time>/report.html ../../docs/images/demo-report.png
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [report, out] = process.argv.slice(2);
if (!report || !out) {
  process.stderr.write('usage: node scripts/report-screenshot.mjs <report.html> <out.png>\n');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 1500 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(pathToFileURL(path.resolve(report)).href);
  await page.screenshot({ path: out, fullPage: false });
  if (errors.length > 0) {
    process.stderr.write(`console errors:\n${errors.join('\n')}\n`);
    process.exitCode = 1;
  }
  process.stdout.write(`${out}\n`);
} finally {
  await browser.close();
}
