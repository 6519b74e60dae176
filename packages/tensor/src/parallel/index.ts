/**
 * @prfl/tensor/parallel (Node only): worker threads holding model replicas, for data-parallel training
 * and generation. The plain-data helpers (SharedWeights, packTensor, shardRows, packGradients,
 * sumFlatGradients) and the Replica types are in the main entry, which browsers can load.
 */
export { ParallelGroup } from './parallel-group.js';
export type { ParallelGroupOptions } from './parallel-group.js';
export { MAX_REPLICA_WORKERS, ReplicaPool } from './replica-pool.js';
export type { ReplicaPoolOptions } from './replica-pool.js';
