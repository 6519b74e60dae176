/**
 * @prfl/datasets: preference data for latent reward models and the MovingShapes world.
 *
 * - MovingShapes: a procedural video world (renderer, prompt grammar, compositional split, motion
 *   defects with ground truth) and its pixel-space oracle;
 * - formats: the reference's meta-JSON + .list + .npy layout and our JSONL manifests (see io/);
 * - a latent shard store and deterministic loaders implementing @prfl/tensor's PreferenceSource.
 */
// MovingShapes: vocabulary, prompts, split, geometry, motion, rendering, defects, clips, degradation.
export {
  BACKGROUND_RGB,
  BACKGROUNDS,
  COLOUR_RGB,
  COLOURS,
  CONTRADICTING_MOTION,
  isColourName,
  isMotionKind,
  isShapeName,
  isSizeName,
  MOTION_PHRASES,
  MOTIONS,
  motionFamily,
  rgbFromBytes,
  SHAPES,
  SIZE_RADIUS_64,
  SIZES,
} from './moving-shapes/vocabulary.js';
export type {
  Background,
  BackgroundName,
  ColourName,
  MotionFamily,
  MotionKind,
  Rgb,
  ShapeName,
  SizeName,
} from './moving-shapes/vocabulary.js';
export { formatPrompt, parsePrompt, PROMPT_VOCABULARY, promptTokens } from './moving-shapes/prompt.js';
export type { PromptSpec } from './moving-shapes/prompt.js';
export { combinations, HELD_OUT_MODULUS, isHeldOutCombination, SPLITS } from './moving-shapes/split.js';
export type { Split } from './moving-shapes/split.js';
export { shapeCoverage, shapeDistance, shapeExtent } from './moving-shapes/shapes.js';
export type { Extent } from './moving-shapes/shapes.js';
export { collisionTimes, planMotion, positionAt } from './moving-shapes/motion.js';
export type { Bounds, MotionPlan } from './moving-shapes/motion.js';
export { renderBackground, renderScene } from './moving-shapes/render.js';
export type { FrameState, Scene } from './moving-shapes/render.js';
export { assertVideo, createVideo, frameView } from './moving-shapes/video.js';
export type { Video } from './moving-shapes/video.js';
export {
  ALIGNMENT_DEFECTS,
  deformationScale,
  drawMotionDefect,
  INTEGRITY_DEFECTS,
  isAlignmentDefect,
  isIntegrityDefect,
  isPhysicsDefect,
  MOTION_DEFECTS,
  PHYSICS_DEFECTS,
  warpTime,
} from './moving-shapes/defects.js';
export type {
  AlignmentDefectKind,
  Defect,
  DefectKind,
  InjectionContext,
  IntegrityDefectKind,
  MotionDefectKind,
  PhysicsDefectKind,
} from './moving-shapes/defects.js';
export {
  centroidBounds,
  clipScene,
  DEFORMATION_ROOM,
  renderClip,
  sampleClip,
  sampleClips,
  sizeRadius,
} from './moving-shapes/world.js';
export type {
  ClipLabels,
  ClipSetOptions,
  ClipSpec,
  DrawnContent,
  SampleClipOptions,
} from './moving-shapes/world.js';
export { blurVideo, degradeVideo } from './moving-shapes/degrade.js';
export type { DegradeOptions } from './moving-shapes/degrade.js';
export { judgeVideo } from './moving-shapes/oracle/oracle.js';
export type { OracleOptions, OracleReport } from './moving-shapes/oracle/oracle.js';
export { ORACLE_THRESHOLDS } from './moving-shapes/oracle/thresholds.js';
export type { OracleThresholds } from './moving-shapes/oracle/thresholds.js';
export { trackObject } from './moving-shapes/oracle/track.js';
export type { Track, TrackedFrame } from './moving-shapes/oracle/track.js';
export type {
  IntegrityReport,
  MotionQualityReport,
  PhysicsReport,
} from './moving-shapes/oracle/motion-quality.js';
export type {
  AttributeCheck,
  MotionCheck,
  PromptAdherenceReport,
} from './moving-shapes/oracle/prompt-adherence.js';
export { agreement, evaluateOracle } from './moving-shapes/oracle/agreement.js';
export type { AgreementReport, Confusion, EvaluateOracleOptions } from './moving-shapes/oracle/agreement.js';

// Formats: .npy, labels, layouts, the reference layout, JSONL manifests, the latent shard store.
export { encodePng, frameStrip } from './viz/png.js';
export type { Deflate, FrameStripOptions, RgbImage } from './viz/png.js';
export { encodeNpy, MAX_NPY_HEADER_BYTES, npyToFloat32, parseNpy, readNpy, writeNpy } from './io/npy.js';
export type { EncodeNpyOptions, NpyArray, NpyData, NpyDtype } from './io/npy.js';
export { motionQualityOf, parseQualityLabel } from './io/labels.js';
export type { QualityLabel } from './io/labels.js';
export { channelsLastToTorchLatent, textEmbeddingShape, torchLatentToChannelsLast } from './io/layout.js';
export type { FloatArray } from './io/layout.js';
export { MAX_JSON_DEPTH } from './io/bounded-json.js';
export {
  MAX_LIST_LINE_BYTES,
  MAX_META_JSON_BYTES,
  parseMetaList,
  parseReferenceMeta,
  parseReferenceMetaValue,
  readMetaList,
  readReferenceLatent,
  readReferenceList,
  readReferenceMeta,
  readReferenceText,
  REFERENCE_KEYS,
  writeReferenceLayout,
} from './io/reference.js';
export type {
  MetaPath,
  ReferenceClip,
  ReferenceClipInput,
  ReferenceKeys,
  ReferenceLabels,
  ReferenceMetaFields,
  ReferenceReadOptions,
  WriteReferenceOptions,
} from './io/reference.js';
export {
  MAX_JSONL_LINE_BYTES,
  parseJsonlLine,
  parseJsonlLines,
  parsePairwiseManifest,
  parsePairwiseRecord,
  parsePointwiseManifest,
  parsePointwiseRecord,
  readJsonlLines,
  readPairwiseManifest,
  readPointwiseEntries,
  readPointwiseManifest,
  writeJsonl,
} from './io/jsonl.js';
export type { PairwiseRecord, PointwiseEntry, PointwiseLabels, PointwiseRecord } from './io/jsonl.js';
export {
  LatentShardStore,
  MANIFEST_NAME,
  MAX_STORE_MANIFEST_BYTES,
  parseStoreManifest,
  STORE_FORMAT,
} from './io/shard-store.js';
export type {
  AppendOptions,
  LoadedArray,
  OpenStoreOptions,
  ShardEntry,
  StoreManifest,
  StoredArray,
} from './io/shard-store.js';
export { assignSplit, checkBatchOptions, chunk, epochOrder } from './loaders/order.js';
export type { SplitFractions } from './loaders/order.js';
export { ArrayLoader, describeArray, describeRef } from './loaders/clips.js';
export type { ArrayRef, ClipItem, ClipLabelSet } from './loaders/clips.js';
export { disposeConditioning, stackLatents, stackText } from './loaders/batch.js';
export {
  DEFAULT_LONG_CAPTION_RATE,
  disposeBatch,
  PairwiseSource,
  pairClips,
  PointwiseSource,
  withCaption,
} from './loaders/sources.js';
export type {
  CrossPromptPairwiseBatch,
  EncodeText,
  LabelName,
  PairingMode,
  PairingOptions,
  SourceOptions,
} from './loaders/sources.js';
export {
  jsonlToReference,
  openJsonlDataset,
  openReferenceDataset,
  PreferenceDataset,
  referenceToJsonl,
} from './loaders/dataset.js';
export type {
  LoadedClipArrays,
  OpenJsonlOptions,
  OpenReferenceOptions,
  ReferenceToJsonlOptions,
  SelectOptions,
} from './loaders/dataset.js';
export { writeMovingShapesDataset } from './loaders/moving-shapes-dataset.js';
export type { WriteMovingShapesOptions } from './loaders/moving-shapes-dataset.js';
