/**
 * The page: starts a backend, loads the shipped models from weights/ next to the page, builds the form
 * and wires its buttons; with ?auto=1 it runs generate -> prune -> PRFL -> regenerate by itself and sets
 * `window.__prfl.done`. Every error is shown on the page (and on `window.__prfl.error`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { EMBEDDED_WORLD } from '@prfl/pretrained';
import { App } from './app.js';
import { startBackend, type StartedBackend } from './backend.js';
import { byId, h } from './dom.js';
import { buildForm, formParams, readForm } from './form.js';
import { loadModels } from './models.js';
import { Progress } from './progress.js';
import { pageReport } from './report.js';
import { BACKEND_CHOICES, settingsFromUrl } from './settings.js';

const report = pageReport();
let busy = false;

function showError(e: unknown): void {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  report.error ??= text;
  const box = byId('error');
  box.hidden = false;
  box.append(h('p', {}, text));
  console.error(e);
}

window.addEventListener('error', (e) => showError(e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => showError(e.reason));

function setBusy(on: boolean, app?: App): void {
  busy = on;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#settings button')) b.disabled = on;
  if (!on && app !== undefined && !app.hasGeneration) byId('finetune-button').setAttribute('disabled', '');
}

/** Runs one action at a time, with the buttons disabled and any error shown. */
async function guarded(app: App, action: () => Promise<void>): Promise<boolean> {
  if (busy) return false;
  setBusy(true, app);
  try {
    await action();
    return true;
  } catch (e) {
    showError(e);
    return false;
  } finally {
    setBusy(false, app);
  }
}

function showBackend(b: StartedBackend): void {
  const switches = BACKEND_CHOICES.filter((c) => c !== b.requested).map((c) => {
    const q = new URLSearchParams(location.search);
    q.set('backend', c);
    q.delete('auto');
    return h('a', { href: `?${q}` }, c);
  });
  const skipped = b.skipped.map((s) => `${s.name} skipped: ${s.reason}`).join('; ');
  byId('backend').replaceChildren(
    'backend: ',
    h('strong', { id: 'backend-name', 'data-backend': b.active }, b.description),
    ` (requested ${b.requested}${skipped ? `; ${skipped}` : ''})`,
    b.vae === b.active ? '' : h('span', { id: 'vae-backend' }, `; VAE on ${b.vaeDescription}`),
    '. Switch: ',
    ...switches.flatMap((a, i) => (i === 0 ? [a] : [' ', a])),
  );
}

async function main(): Promise<void> {
  const vocabulary = EMBEDDED_WORLD;
  const settings = settingsFromUrl(location.search, vocabulary);
  report.settings = settings;
  const form = byId<HTMLFormElement>('settings');
  const fixed = { backend: settings.backend, vae: settings.vae };
  buildForm(form, vocabulary, settings);
  const progress = new Progress();
  progress.start('Starting the backend', 1);
  const backend = await startBackend(settings.backend, settings.vae);
  report.backend = backend;
  showBackend(backend);
  progress.start('Loading the shipped models (VAE, text encoder, DiT, PAVRM)', 1);
  const t0 = performance.now();
  const models = await loadModels(backend);
  report.msLoad = performance.now() - t0;
  const app = new App(models, backend, progress);
  report.tensors.load = tf.memory().numTensors;
  progress.finish(
    `Models loaded in ${(report.msLoad / 1000).toFixed(1)} s (${tf.memory().numTensors} tensors). Choose a prompt and press Generate.`,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void guarded(app, async () => {
      const s = readForm(form, fixed, vocabulary);
      history.replaceState(null, '', `?${formParams(form, fixed)}`);
      await app.generate(s);
    });
  });
  byId('finetune-button').addEventListener('click', () => {
    void guarded(app, async () => {
      await app.finetuneAndRegenerate(readForm(form, fixed, vocabulary));
      report.done = true;
    });
  });
  byId('reset').addEventListener('click', () => void guarded(app, async () => app.reset()));
  if (settings.auto) {
    const ok =
      (await guarded(app, () => app.generate(settings))) &&
      (await guarded(app, () => app.finetuneAndRegenerate(settings)));
    if (ok) report.done = true;
  }
}

main().catch(showError);
