/**
 * The PRFL step of docs/schedulers.md ("One step under a gradient tape"): the guide's code block itself,
 * read from the file and run on a tiny Wan DiT (the generator), Wan's UniPC and a PAVRM on its own
 * truncated DiT (the frozen reward), after the untaped rollout of the hand-written-loop section. Its
 * gradients must be the generator's alone; `tf.variableGrads` without a variable list would also
 * differentiate (and an optimizer then move) every trainable variable of the reward. Needs
 * @prfl/models and @prfl/schedulers (dev dependencies); skipped where they are not installed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend, shutdownBackend, stepIndex, type VelocityModel } from '@prfl/tensor';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pavrm } from '../src/index.js';

type Models = typeof import('@prfl/models');
type Schedulers = typeof import('@prfl/schedulers');
const modelsSpecifier = '@prfl/models';
const schedulersSpecifier = '@prfl/schedulers';
let models: Models | undefined;
let schedulers: Schedulers | undefined;
try {
  models = (await import(/* @vite-ignore */ modelsSpecifier)) as Models;
  schedulers = (await import(/* @vite-ignore */ schedulersSpecifier)) as Schedulers;
} catch {
  models = undefined;
}

const GUIDE = fileURLToPath(new URL('../../../docs/schedulers.md', import.meta.url));

/** The guide's ```ts block that calls tf.variableGrads, compiled to JavaScript. */
function guideSnippet(): string {
  const text = readFileSync(GUIDE, 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const block = blocks.find((b) => b.includes('tf.variableGrads('));
  if (block === undefined) throw new Error(`${GUIDE}: no ts block calls tf.variableGrads`);
  return ts.transpileModule(block, { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
}

/** The taped step the guide used to show: no variable list. */
function withoutVariableList(run: () => tf.Scalar): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  return tf.variableGrads(run);
}

describe.skipIf(models === undefined || schedulers === undefined)(
  'the PRFL step of docs/schedulers.md',
  () => {
    beforeAll(async () => {
      await initBackend({ backend: 'cpu' });
    });
    afterAll(() => shutdownBackend());

    it('runs as written and differentiates the generator only, not the frozen reward', async () => {
      const { WanDiT } = models as Models;
      const { FlowUniPCScheduler } = schedulers as Schedulers;
      const dit = new WanDiT('tiny', { seed: 1, name: 'snippet_generator' });
      const generator: VelocityModel = dit;
      const rewardDit = new WanDiT('tiny', { seed: 2, name: 'snippet_reward_dit' });
      const rewardBackbone = rewardDit.truncate(2, { name: 'snippet_reward_backbone' });
      rewardDit.dispose();
      const rewardModel = new Pavrm(rewardBackbone, { hidden: [16, 8], name: 'snippet_reward' });
      const conditioning = { text: new Generator('text').normal<tf.Rank.R3>([1, 5, 32]) };

      // The hand-written loop of the guide, stopped before step k (PRFL's rollout runs untaped).
      const scheduler = new FlowUniPCScheduler();
      const schedule = scheduler.schedule(6, { shift: 5 });
      const k = new Generator(3).nextInt(schedule.numSteps - 1); // drawn from 0..N-2
      let x = new Generator(42).normal<tf.Rank.R5>([1, 1, 4, 4, 16]);
      let state = scheduler.initialState(schedule);
      for (let i = 0; i < k; i++) {
        const v = generator.predictVelocity(x, [schedule.timesteps[i]!], conditioning);
        const index = stepIndex(i, schedule.numSteps);
        const next = scheduler.step({ schedule, state, index, sample: x, modelOutput: v });
        v.dispose();
        x.dispose();
        scheduler.disposeState(state);
        x = next.sample;
        state = next.state;
      }

      // The taped step: the guide's block, run with the names it reads in scope.
      const scope = { tf, generator, scheduler, schedule, state, x, k, conditioning, rewardModel, stepIndex };
      const snippet = new Function(
        ...Object.keys(scope),
        `${guideSnippet()}\nreturn { loss, grads, trainable };`,
      );
      const { loss, grads, trainable } = snippet(...Object.values(scope)) as {
        loss: tf.Scalar;
        grads: tf.NamedTensorMap;
        trainable: tf.Variable[];
      };

      expect(Number.isFinite((await loss.data())[0]!)).toBe(true);
      const generatorNames = new Set(trainable.map((v) => v.name));
      expect(generatorNames.size).toBe(dit.trainableVariables().length);
      expect(Object.keys(grads).length).toBeGreaterThan(0);
      expect(Object.keys(grads).every((n) => generatorNames.has(n))).toBe(true);
      const rewardNames = [...rewardModel.namedVariables().values()].map((v) => v.name);
      expect(rewardNames.some((n) => n in grads)).toBe(false);
      // Wan's init zeroes the output head, whose gradient is what moves the generator first.
      const head = grads[dit.namedVariables().get('head.head.weight')!.name]!;
      expect((await tf.max(tf.abs(head)).data())[0]).toBeGreaterThan(0);

      // What the guide showed before: no list, and every trainable variable of the reward gets a gradient.
      const all = withoutVariableList(() => {
        const v = generator.predictVelocity(x, [schedule.timesteps[k]!], conditioning);
        const index = stepIndex(k);
        const { sample } = scheduler.step({ schedule, state, index, sample: x, modelOutput: v });
        const logits = rewardModel.score(sample, [schedule.timesteps[k + 1]!], conditioning);
        return tf.mul(-0.1, tf.mean(tf.sigmoid(logits))) as tf.Scalar;
      });
      const leaked = rewardNames.filter((n) => n in all.grads);
      const rewardTrainable = [...rewardModel.namedVariables().values()].filter((v) => v.trainable);
      expect(leaked.length).toBe(rewardTrainable.length);
      console.log(
        `PRFL step (k = ${k}): ${Object.keys(grads).length} generator gradients; without a variable list also ${leaked.length} of the reward's`,
      );

      tf.dispose([
        loss,
        ...Object.values(grads),
        all.value,
        ...Object.values(all.grads),
        x,
        conditioning.text,
      ]);
      scheduler.disposeState(state);
      rewardModel.dispose();
      rewardBackbone.dispose();
      dit.dispose();
    });
  },
);
