/**
 * The error a PyTorch checkpoint raises when its pickle asks for something this reader will not do.
 */
import { CorruptFileError } from '../errors.js';

/**
 * data.pkl names a Python global (a function or class) outside the short list a state dict needs, or
 * uses an opcode that builds arbitrary objects. Nothing was executed: the reader only ever builds dicts,
 * lists, tuples, numbers, strings and tensors. A subclass of CorruptFileError, so code that treats
 * "not a usable weights file" as one case keeps working; `global` names what was refused.
 */
export class UnsafePickleError extends CorruptFileError {
  override name = 'UnsafePickleError';

  constructor(
    message: string,
    /** The refused global as `module.name`, or the opcode's name. */
    readonly global: string,
  ) {
    super(message);
  }
}
