/**
 * The settings form, built from the world's vocabulary. Its fields are named like the URL parameters,
 * so reading it is `settingsFromUrl` on the form's values: one parser, one set of checks and messages.
 */
import { h } from './dom.js';
import { type Settings, settingsFromUrl, type Vocabulary } from './settings.js';

function select(name: string, label: string, options: readonly string[], value: string): HTMLElement {
  const s = h('select', { name, id: `f-${name}` });
  for (const o of options) s.append(h('option', { value: o, selected: o === value }, o));
  return h('label', { for: `f-${name}` }, `${label} `, s);
}

function numberField(
  name: string,
  label: string,
  value: number,
  attrs: Record<string, string | number> = {},
): HTMLElement {
  const input = h('input', { type: 'number', name, id: `f-${name}`, value, ...attrs });
  return h('label', { for: `f-${name}` }, `${label} `, input);
}

/** Fills `form` with the fields and the three buttons. */
export function buildForm(form: HTMLFormElement, vocabulary: Vocabulary, s: Settings): void {
  const mode = s.rule.kind;
  form.replaceChildren(
    h(
      'fieldset',
      {},
      h('legend', {}, 'Prompt'),
      `a ${vocabulary.sizes[0] ?? ''} `,
      select('colour', 'colour', vocabulary.colours, s.colour),
      select('shape', 'shape', vocabulary.shapes, s.shape),
      select('motion', 'moving', vocabulary.motions, s.motion),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Sampling'),
      numberField('seeds', 'seeds', s.seeds, { min: 1, max: 16 }),
      numberField('seed', 'base seed', s.baseSeed, { min: 0 }),
      numberField('steps', 'steps', s.steps, { min: 2, max: 50 }),
      numberField('guidance', 'guidance', s.guidance, { min: 1, max: 20, step: 0.5 }),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Pruning'),
      select('pruneMode', 'rule', ['top-k', 'threshold', 'none'], mode),
      numberField('pruneAt', 'after step', s.pruneAfter, { min: 1 }),
      numberField('keepK', 'keep best', s.rule.kind === 'top-k' ? s.rule.k : 1, { min: 1 }),
      numberField('thresholdP', 'or p(good) >=', s.rule.kind === 'threshold' ? s.rule.p : 0.5, {
        min: 0,
        max: 1,
        step: 'any',
      }),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'PRFL'),
      numberField('prflSteps', 'steps', s.prflSteps, { min: 1, max: 200 }),
      numberField('prflBatch', 'batch', s.prflBatch, { min: 1, max: 8 }),
      numberField('lr', 'learning rate', s.lr, { min: 0, step: 'any' }),
      numberField('clips', 'SFT clips', s.clips, { min: 1, max: 64 }),
    ),
    h(
      'div',
      { class: 'buttons' },
      h('button', { type: 'submit', id: 'generate' }, 'Generate'),
      h(
        'button',
        { type: 'button', id: 'finetune-button', disabled: true },
        'Fine-tune with PRFL, regenerate',
      ),
      h('button', { type: 'button', id: 'reset', disabled: true }, 'Reset generator'),
    ),
  );
}

/** Settings the form does not change: they come from the URL. */
export interface FixedSettings {
  backend: string;
  vae: string;
}

/** The URL parameters the form's values stand for (with the fixed ones; `auto` is never set). */
export function formParams(form: HTMLFormElement, fixed: FixedSettings): URLSearchParams {
  const values = new FormData(form);
  const q = new URLSearchParams({ backend: fixed.backend, vae: fixed.vae });
  for (const k of ['colour', 'shape', 'motion', 'seeds', 'seed', 'steps', 'guidance', 'pruneAt']) {
    q.set(k, String(values.get(k) ?? ''));
  }
  for (const k of ['prflSteps', 'prflBatch', 'lr', 'clips']) q.set(k, String(values.get(k) ?? ''));
  const mode = values.get('pruneMode');
  if (mode === 'none') q.set('keep', '0');
  else if (mode === 'threshold') q.set('threshold', String(values.get('thresholdP') ?? ''));
  else q.set('keep', String(values.get('keepK') ?? ''));
  return q;
}

/** The settings in the form; throws a SettingsError naming the field that is wrong. */
export function readForm(form: HTMLFormElement, fixed: FixedSettings, vocabulary: Vocabulary): Settings {
  return settingsFromUrl(`?${formParams(form, fixed)}`, vocabulary);
}
