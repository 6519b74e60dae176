/**
 * What the commands that train leave in their run folders, beside config.resolved.yaml and metrics.jsonl
 * (run-dir.ts), so that one command's output is the next one's input:
 *
 *     weights/                  an embedded weights folder (manifest, VAE, text encoder, DiT, PAVRM) with
 *                               what the run trained: `--weights RUN/weights` loads it in every command
 *     generations.safetensors   labelled generations: latents [N, F', H', W', C], text [N, L, D]
 *     generations.json          one judged video per generation (prompt, seed, oracle labels), same order
 *     pixel-reward.safetensors  instead of weights/ for `prfl train-reward --space pixel`
 *     checkpoints/              the trainer's checkpoints (resume)
 *     eval.json                 the run's evaluation
 *
 * `prfl demo` keeps its generations and checkpoints in reward/ and prfl/ (its stages), and its fine-tuned
 * weights in weights/ too.
 */
export { GENERATIONS_FILE, VIDEOS_FILE as GENERATIONS_JSON_FILE } from '@prfl/pretrained/recipe';

export const RUN_WEIGHTS_DIR = 'weights';
export const CHECKPOINTS_DIR = 'checkpoints';
export const EVAL_FILE = 'eval.json';
/** `prfl train-reward --space pixel`: the RGB ReFL baseline's reward (instead of weights/). */
export const PIXEL_REWARD_FILE = 'pixel-reward.safetensors';
