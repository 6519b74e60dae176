// Appends shards to a latent store until killed (the crash test of test/built-package.test.ts).
// Usage: node append-forever.mjs <folder>
import { LatentShardStore } from '@prfl/datasets';

const store = await LatentShardStore.open(process.argv[2], { create: true });
for (let i = store.size; ; i++) {
  const data = new Float32Array(256 * 1024).fill(i);
  await store.append({ [`clip-${i}/latent`]: { shape: [4, 64, 1024], data } });
  process.stdout.write(`${i}\n`);
}
