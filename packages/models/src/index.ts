/** @prfl/models: the Wan2.1-architecture video DiT, the causal video VAE, text encoders and the sampling pipeline. */
export * from './dit/index.js';
export * from './vae/index.js';
export * from './text/index.js';
export * from './pipeline/index.js';
