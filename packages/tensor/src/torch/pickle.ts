/**
 * A restricted unpickler: a small interpreter for the pickle opcodes that dicts, lists, tuples, strings,
 * numbers, None and PyTorch tensors need (protocol 2, as torch.save writes, and 3-5's framing and
 * shorter string forms). It never imports or calls anything: a GLOBAL is looked up in an allow list
 * (`PickleHooks.global`), and REDUCE, BUILD and persistent ids are interpreted by the hooks, which
 * construct plain values. Every read is bounds-checked and every structure is bounded by TorchReadLimits,
 * so a damaged or hostile pickle fails with our own error.
 */
import { CorruptFileError } from '../errors.js';
import { UnsafePickleError } from './errors.js';
import type { TorchReadLimits } from './limits.js';
import { describePy, PyDict, PyGlobal, PyList, PyTuple, type PyValue, type TorchKey } from './values.js';

/** What gives globals, calls, object state and persistent ids their meaning. */
export interface PickleHooks {
  /** Resolves `module.name` or throws UnsafePickleError. */
  global(module: string, name: string): PyGlobal;
  /** REDUCE: `fn(*args)` for an allowed global, interpreted. */
  call(fn: PyGlobal, args: PyTuple): PyValue;
  /** BINPERSID: the object a persistent id stands for. */
  persistentLoad(pid: PyValue): PyValue;
  /** BUILD: sets `state` on `target` (or refuses). */
  build(target: PyValue, state: PyValue): void;
}

export type PickleLimits = Pick<
  TorchReadLimits,
  'maxMemoEntries' | 'maxStackDepth' | 'maxStringBytes' | 'maxEntries'
>;

/** Names of the opcodes this reader refuses, for the error message. */
const REFUSED: Readonly<Record<number, string>> = {
  48: 'POP',
  49: 'POP_MARK',
  50: 'DUP',
  70: 'FLOAT',
  73: 'INT',
  76: 'LONG',
  80: 'PERSID',
  83: 'STRING',
  84: 'BINSTRING',
  85: 'SHORT_BINSTRING',
  86: 'UNICODE',
  66: 'BINBYTES',
  67: 'SHORT_BINBYTES',
  142: 'BINBYTES8',
  150: 'BYTEARRAY8',
  151: 'NEXT_BUFFER',
  152: 'READONLY_BUFFER',
  100: 'DICT',
  108: 'LIST',
  103: 'GET',
  112: 'PUT',
  143: 'EMPTY_SET',
  144: 'ADDITEMS',
  145: 'FROZENSET',
};

/** Opcodes that create instances of arbitrary classes: refused as unsafe. */
const OBJECT_OPCODES: Readonly<Record<number, string>> = {
  105: 'INST',
  111: 'OBJ',
  129: 'NEWOBJ',
  146: 'NEWOBJ_EX',
  130: 'EXT1',
  131: 'EXT2',
  132: 'EXT4',
};

const MAX_LONG_BYTES = 64;
const MAX_GLOBAL_NAME = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs `bytes` (a pickle) and returns the value STOP yields. `file` names the checkpoint in errors.
 *
 * @throws UnsafePickleError for a refused global or object-creating opcode; CorruptFileError for anything
 *   malformed (unknown opcode, truncation, a type error such as SETITEM on a list) or over a limit.
 */
export function unpickle(bytes: Uint8Array, file: string, hooks: PickleHooks, limits: PickleLimits): PyValue {
  const where = `${file}: data.pkl`;
  const n = bytes.length;
  let pos = 0;
  let opAt = 0;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let entries = 0;

  const fail = (message: string): CorruptFileError =>
    new CorruptFileError(`${where}: ${message} (opcode at byte ${opAt})`);
  const need = (count: number): void => {
    if (count < 0 || pos + count > n)
      throw fail(`ends after ${n} bytes, inside an opcode that needs ${count} more`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = (): number => {
    need(2);
    const v = (bytes[pos] as number) | ((bytes[pos + 1] as number) << 8);
    pos += 2;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v =
      (bytes[pos] as number) |
      ((bytes[pos + 1] as number) << 8) |
      ((bytes[pos + 2] as number) << 16) |
      ((bytes[pos + 3] as number) << 24);
    pos += 4;
    return v;
  };
  const u32 = (): number => i32() >>> 0;
  const u64 = (): number => {
    const low = u32();
    const high = u32();
    return high * 2 ** 32 + low;
  };
  const text = (length: number): string => {
    if (length > limits.maxStringBytes) {
      throw fail(`a string of ${length} bytes, more than the limit of ${limits.maxStringBytes}`);
    }
    need(length);
    const slice = bytes.subarray(pos, pos + length);
    pos += length;
    try {
      return utf8.decode(slice);
    } catch {
      throw fail('a string that is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > MAX_GLOBAL_NAME) throw fail('GLOBAL without a newline-terminated name');
    const s = text(end - pos);
    pos = end + 1;
    return s;
  };
  const base = (): number => (marks.length > 0 ? (marks[marks.length - 1] as number) : 0);
  const push = (v: PyValue): void => {
    if (stack.length >= limits.maxStackDepth) {
      throw fail(`the stack holds more than the limit of ${limits.maxStackDepth} values`);
    }
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length <= base()) throw fail('pops from an empty stack');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= base()) throw fail('needs a value on an empty stack');
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    const at = marks.pop();
    if (at === undefined) throw fail('closes a MARK that was never opened');
    return stack.splice(at);
  };
  const count = (k: number): void => {
    entries += k;
    if (entries > limits.maxEntries) {
      throw fail(`more than the limit of ${limits.maxEntries} items in dicts, lists and tuples`);
    }
  };
  const key = (k: PyValue): TorchKey => {
    if (
      k === null ||
      typeof k === 'string' ||
      typeof k === 'number' ||
      typeof k === 'bigint' ||
      typeof k === 'boolean'
    ) {
      return k;
    }
    throw fail(`a dict key that is ${describePy(k)}; keys must be str, int, bool or None`);
  };
  const setItems = (items: PyValue[], target: PyValue): void => {
    if (!(target instanceof PyDict)) throw fail(`SETITEM(S) on ${describePy(target)}, expected a dict`);
    if (items.length % 2 !== 0) throw fail('SETITEMS with an odd number of values');
    count(items.length / 2);
    for (let i = 0; i < items.length; i += 2)
      target.map.set(key(items[i] as PyValue), items[i + 1] as PyValue);
  };
  const appendItems = (items: PyValue[], target: PyValue): void => {
    if (!(target instanceof PyList)) throw fail(`APPEND(S) on ${describePy(target)}, expected a list`);
    count(items.length);
    for (const item of items) target.items.push(item);
  };
  const tuple = (items: PyValue[]): PyTuple => {
    count(items.length);
    return new PyTuple(items);
  };
  const memoize = (index: number): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemoEntries) {
      throw fail(`more than the limit of ${limits.maxMemoEntries} memo entries`);
    }
    memo.set(index, top());
  };
  const recall = (index: number): void => {
    if (!memo.has(index)) throw fail(`reads memo entry ${index}, which was never stored`);
    push(memo.get(index) as PyValue);
  };
  const integer = (length: number): number | bigint => {
    if (length > MAX_LONG_BYTES) throw fail(`an integer of ${length} bytes, more than ${MAX_LONG_BYTES}`);
    need(length);
    if (length === 0) return 0;
    let v = 0n;
    for (let i = length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i] as number);
    if (((bytes[pos + length - 1] as number) & 0x80) !== 0) v -= 1n << BigInt(8 * length);
    pos += length;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    if (pos >= n) throw new CorruptFileError(`${where}: ends after ${n} bytes without a STOP opcode`);
    opAt = pos;
    const op = bytes[pos++] as number;
    switch (op) {
      case 0x80: {
        // PROTO
        const version = u8();
        if (version > 5) throw fail(`pickle protocol ${version}; this reader knows protocols up to 5`);
        break;
      }
      case 0x95: {
        // FRAME: a length hint for buffered readers; the opcodes inside are read as usual.
        const length = u64();
        if (length > n - pos) throw fail(`a frame of ${length} bytes, longer than what follows`);
        break;
      }
      case 0x2e: {
        // STOP
        const value = pop();
        if (stack.length !== 0 || marks.length !== 0) {
          throw fail(`STOP with ${stack.length} values and ${marks.length} MARKs left over`);
        }
        return value;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxStackDepth) {
          throw fail(`more than the limit of ${limits.maxStackDepth} open MARKs`);
        }
        marks.push(stack.length);
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x8a: // LONG1
        push(integer(u8()));
        break;
      case 0x8b: {
        // LONG4
        const length = i32();
        if (length < 0) throw fail(`LONG4 with a negative length ${length}`);
        push(integer(length));
        break;
      }
      case 0x47: {
        // BINFLOAT: big-endian IEEE-754 double
        need(8);
        push(new DataView(bytes.buffer, bytes.byteOffset + pos, 8).getFloat64(0, false));
        pos += 8;
        break;
      }
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(tuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        push(new PyList());
        break;
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x61: {
        // APPEND
        const value = pop();
        appendItems([value], top());
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(items, top());
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const k = pop();
        setItems([k, value], top());
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(items, top());
        break;
      }
      case 0x71: // BINPUT
        memoize(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoize(u32());
        break;
      case 0x94: // MEMOIZE
        memoize(memo.size);
        break;
      case 0x68: // BINGET
        recall(u8());
        break;
      case 0x6a: // LONG_BINGET
        recall(u32());
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        push(hooks.global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') {
          throw fail(`STACK_GLOBAL expects two strings, got ${describePy(module)} and ${describePy(name)}`);
        }
        push(hooks.global(module, name));
        break;
      }
      case 0x52: {
        // REDUCE: fn(*args), interpreted by the hooks for the allowed globals only
        const args = pop();
        const fn = pop();
        if (!(args instanceof PyTuple))
          throw fail(`REDUCE with ${describePy(args)} as arguments, expected a tuple`);
        if (!(fn instanceof PyGlobal)) {
          throw fail(`REDUCE calls ${describePy(fn)}, which is not a function`);
        }
        push(hooks.call(fn, args));
        break;
      }
      case 0x51: // BINPERSID
        push(hooks.persistentLoad(pop()));
        break;
      case 0x62: {
        // BUILD
        const state = pop();
        hooks.build(top(), state);
        break;
      }
      default: {
        const objectOp = OBJECT_OPCODES[op];
        if (objectOp !== undefined) {
          throw new UnsafePickleError(
            `${where}: opcode ${objectOp} at byte ${opAt} creates an instance of an arbitrary class; refused (nothing was executed)`,
            objectOp,
          );
        }
        const known = REFUSED[op];
        throw fail(
          `opcode 0x${op.toString(16).padStart(2, '0')}${known ? ` (${known})` : ''} is not one this restricted reader accepts`,
        );
      }
    }
  }
}
