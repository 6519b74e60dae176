/**
 * PyTorch's typed storage classes (what data.pkl names for each storage, e.g. `torch.FloatStorage`) and
 * the safetensors dtype with the same bytes, so tensors from both formats come out alike.
 */
import type { SafetensorsDtype } from '../safetensors/dtypes.js';

const STORAGE_DTYPES: Readonly<Record<string, SafetensorsDtype>> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  Float8_e5m2Storage: 'F8_E5M2',
  Float8_e4m3fnStorage: 'F8_E4M3',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UInt16Storage: 'U16',
  UInt32Storage: 'U32',
  UInt64Storage: 'U64',
};

/** The storage class names this reader supports, e.g. `FloatStorage`. */
export const TORCH_STORAGE_TYPES: readonly string[] = Object.keys(STORAGE_DTYPES);

/** The dtype of `torch.<name>` (e.g. 'FloatStorage' -> 'F32'), or undefined for an unsupported storage class. */
export function storageDtype(name: string): SafetensorsDtype | undefined {
  return Object.hasOwn(STORAGE_DTYPES, name) ? STORAGE_DTYPES[name] : undefined;
}
