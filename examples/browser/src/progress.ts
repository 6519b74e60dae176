/** The progress line: which phase runs, how far it is, and how long it has taken. */
import { byId } from './dom.js';

export class Progress {
  readonly #label = byId('phase');
  readonly #bar = byId<HTMLProgressElement>('progress');
  #started = performance.now();
  #name = '';

  /** A new phase of `total` units. */
  start(name: string, total: number): void {
    this.#name = name;
    this.#started = performance.now();
    this.#bar.max = Math.max(1, total);
    this.update(0);
  }

  update(done: number, detail = ''): void {
    this.#bar.value = done;
    const s = ((performance.now() - this.#started) / 1000).toFixed(1);
    this.#label.textContent = `${this.#name}: ${done} / ${this.#bar.max}${detail ? ` (${detail})` : ''}, ${s} s`;
  }

  finish(text: string): void {
    this.#bar.value = this.#bar.max;
    this.#label.textContent = text;
  }
}
