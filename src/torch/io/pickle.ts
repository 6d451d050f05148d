// A Python pickle reader (protocols 0-5, the opcodes torch.save emits) that never executes anything: globals
// resolve only through an allowlist of data constructors implemented here, everything else is refused by
// name. Offsets, lengths, memo size and nesting depth are all bounded.

export class UnpicklingError extends Error {}

/** A Python callable or class named by GLOBAL / STACK_GLOBAL (only ever looked up, never imported). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get path(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python tuple (kept apart from lists where it matters, e.g. persistent ids). */
export class PyTuple extends Array<unknown> {}

/** A Python dict or OrderedDict: insertion-ordered, any hashable key. */
export type PyDict = Map<unknown, unknown>;

export interface UnpickleOptions {
  /** Resolves a persistent id (torch's storages). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Calls an allowed global; returns undefined to refuse it. */
  call: (fn: PyGlobal, args: unknown[]) => unknown;
  /** Creates an instance of an allowed class for NEWOBJ; returns undefined to refuse it. */
  construct?: (cls: PyGlobal, args: unknown[]) => unknown;
  /** Applies BUILD state to an object; returns false to refuse. */
  build?: (obj: unknown, state: unknown) => boolean;
  maxMemo?: number;
  maxDepth?: number;
}

function refuse(what: string): never {
  throw new UnpicklingError(
    `refused to load: the file calls ${what}, which is not a tensor or plain data ` +
      '(only tensors, numbers, strings and containers are read; no code in the file is ever run)',
  );
}

/** Unpickles one object starting at `offset`; returns it and the offset just past its STOP opcode. */
export function unpickle(buf: Uint8Array, offset: number, o: UnpickleOptions): { value: unknown; end: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const maxMemo = o.maxMemo ?? 1 << 22;
  const maxDepth = o.maxDepth ?? 10_000;
  let pos = offset;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  const need = (n: number) => {
    if (n < 0 || pos + n > buf.length)
      throw new UnpicklingError(`truncated pickle: needs ${n} bytes at offset ${pos}, the data ends at ${buf.length}`);
  };
  const u8 = () => {
    need(1);
    return buf[pos++];
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(buf.length)) throw new UnpicklingError(`length ${v} at offset ${pos - 8} exceeds the data`);
    return Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw new UnpicklingError('truncated pickle: unterminated text line');
    const s = latin1.decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const push = (v: unknown) => {
    if (stack.length > maxDepth * 100) throw new UnpicklingError('pickle stack too deep');
    stack.push(v);
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1]))
      throw new UnpicklingError('pickle stack underflow');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) throw new UnpicklingError('pickle stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) throw new UnpicklingError('pickle MARK missing');
    return stack.splice(m);
  };
  const memoPut = (i: number, v: unknown) => {
    if (!memo.has(i) && memo.size >= maxMemo) throw new UnpicklingError(`pickle memo exceeds ${maxMemo} entries`);
    memo.set(i, v);
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw new UnpicklingError(`pickle memo has no entry ${i}`);
    return memo.get(i);
  };
  const text = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      throw new UnpicklingError(`a string that is not UTF-8 at offset ${pos - b.length}`);
    }
  };
  // INT, LONG, GET and PUT spell their numbers in decimal; anything else is corrupt, not NaN
  const decimal = (op: string) => {
    const s = line().trim();
    if (!/^[+-]?\d+L?$/.test(s)) throw new UnpicklingError(`${op} with ${JSON.stringify(s.slice(0, 40))} for a number at offset ${pos}`);
    const v = BigInt(s.replace(/L$/, ''));
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const memoIndex = (op: string) => {
    const i = decimal(op);
    if (typeof i !== 'number' || i < 0) throw new UnpicklingError(`${op} of memo entry ${i} at offset ${pos}`);
    return i;
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const asList = (v: unknown, op: string): unknown[] => {
    if (!Array.isArray(v) || v instanceof PyTuple) throw new UnpicklingError(`${op} on a non-list`);
    return v;
  };
  const asDict = (v: unknown, op: string): PyDict => {
    if (!(v instanceof Map)) throw new UnpicklingError(`${op} on a non-dict`);
    return v;
  };
  const tuple = (items: unknown[]) => PyTuple.from(items) as PyTuple;
  const callGlobal = (fn: unknown, args: unknown) => {
    if (!(fn instanceof PyGlobal)) throw new UnpicklingError('REDUCE of something that is not a global');
    if (!Array.isArray(args)) throw new UnpicklingError('REDUCE arguments are not a tuple');
    const r = o.call(fn, args);
    if (r === undefined) refuse(fn.path);
    return r;
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        u64();
        break; // FRAME: framing only
      case 0x2e: {
        // STOP
        const v = pop();
        if (stack.length) throw new UnpicklingError('pickle ends with extra items on its stack');
        return { value: v, end: pos };
      }
      case 0x28: // MARK
        if (marks.length >= maxDepth) throw new UnpicklingError(`pickle nesting deeper than ${maxDepth}`);
        marks.push(stack.length);
        break;
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        push(top());
        break; // DUP
      case 0x4e:
        push(null);
        break; // NONE
      case 0x88:
        push(true);
        break; // NEWTRUE
      case 0x89:
        push(false);
        break; // NEWFALSE
      case 0x4a:
        push(i32());
        break; // BININT
      case 0x4b:
        push(u8());
        break; // BININT1
      case 0x4d:
        push(u16());
        break; // BININT2
      case 0x8a:
        push(decodeLong(bytes(u8())));
        break; // LONG1
      case 0x8b: {
        const n = i32();
        push(decodeLong(bytes(n)));
        break;
      } // LONG4
      case 0x47: {
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      } // BINFLOAT (big-endian)
      case 0x49: {
        // INT (text)
        const at = pos;
        const s = line().trim();
        if (s === '00' || s === '01') push(s === '01');
        else {
          pos = at;
          push(decimal('INT'));
        }
        break;
      }
      case 0x4c:
        push(decimal('LONG'));
        break; // LONG (text)
      case 0x46:
        push(Number(line()));
        break; // FLOAT (text)
      case 0x58:
        push(text(bytes(u32())));
        break; // BINUNICODE
      case 0x8c:
        push(text(bytes(u8())));
        break; // SHORT_BINUNICODE
      case 0x8d:
        push(text(bytes(u64())));
        break; // BINUNICODE8
      case 0x56:
        push(line());
        break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x55:
        push(latin1.decode(bytes(u8())));
        break; // SHORT_BINSTRING (py2 str)
      case 0x54: {
        const n = i32();
        push(latin1.decode(bytes(n)));
        break;
      } // BINSTRING
      case 0x53:
        push(line().replace(/^'(.*)'$|^"(.*)"$/, '$1$2'));
        break; // STRING
      case 0x43:
        push(bytes(u8()).slice());
        break; // SHORT_BINBYTES
      case 0x42:
        push(bytes(u32()).slice());
        break; // BINBYTES
      case 0x8e:
        push(bytes(u64()).slice());
        break; // BINBYTES8
      case 0x96:
        push(bytes(u64()).slice());
        break; // BYTEARRAY8
      case 0x29:
        push(tuple([]));
        break; // EMPTY_TUPLE
      case 0x85:
        push(tuple([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        push(tuple([a, b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        push(tuple([a, b, c]));
        break;
      } // TUPLE3
      case 0x74:
        push(tuple(popMark()));
        break; // TUPLE
      case 0x5d:
        push([]);
        break; // EMPTY_LIST
      case 0x6c:
        push(popMark());
        break; // LIST
      case 0x61: {
        const v = pop();
        asList(top(), 'APPEND').push(v);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        asList(top(), 'APPENDS').push(...items);
        break;
      } // APPENDS
      case 0x7d:
        push(new Map());
        break; // EMPTY_DICT
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new Map();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        push(d);
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        asDict(top(), 'SETITEM').set(k, v);
        break;
      } // SETITEM
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = asDict(top(), 'SETITEMS');
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x8f:
        push(new Set());
        break; // EMPTY_SET
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw new UnpicklingError('ADDITEMS on a non-set');
        for (const i of items) s.add(i);
        break;
      }
      case 0x91:
        push(new Set(popMark()));
        break; // FROZENSET
      case 0x68:
        push(memoGet(u8()));
        break; // BINGET
      case 0x6a:
        push(memoGet(u32()));
        break; // LONG_BINGET
      case 0x67:
        push(memoGet(memoIndex('GET')));
        break; // GET
      case 0x71:
        memoPut(u8(), top());
        break; // BINPUT
      case 0x72:
        memoPut(u32(), top());
        break; // LONG_BINPUT
      case 0x70:
        memoPut(memoIndex('PUT'), top());
        break; // PUT
      case 0x94:
        memoPut(memo.size, top());
        break; // MEMOIZE
      case 0x63: {
        const module = line();
        push(new PyGlobal(module, line()));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new UnpicklingError('STACK_GLOBAL needs two strings');
        push(new PyGlobal(module, name));
        break;
      }
      case 0x52: {
        const args = pop();
        const fn = pop();
        push(callGlobal(fn, args));
        break;
      } // REDUCE
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal) || !Array.isArray(args)) throw new UnpicklingError('NEWOBJ of something that is not a class');
        const r = o.construct?.(cls, args);
        if (r === undefined) refuse(cls.path);
        push(r);
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop();
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal) || !Array.isArray(args)) throw new UnpicklingError('NEWOBJ_EX of something that is not a class');
        const r = o.construct?.(cls, args);
        if (r === undefined) refuse(cls.path);
        push(r);
        break;
      }
      case 0x69: {
        // INST
        const module = line();
        const name = line();
        const args = popMark();
        push(callGlobal(new PyGlobal(module, name), args));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        push(callGlobal(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (!o.build?.(obj, state))
          throw new UnpicklingError(`refused to load: BUILD on ${obj instanceof PyGlobal ? obj.path : typeof obj}`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!o.persistentLoad) throw new UnpicklingError('persistent id in a pickle that takes none');
        push(o.persistentLoad(pid));
        break;
      }
      case 0x50: {
        // PERSID
        const pid = line();
        if (!o.persistentLoad) throw new UnpicklingError('persistent id in a pickle that takes none');
        push(o.persistentLoad(pid));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84:
        throw new UnpicklingError('pickle uses the extension registry (EXT1/2/4), which torch files never do');
      case 0x97:
      case 0x98:
        throw new UnpicklingError('pickle uses out-of-band buffers, which torch files never do');
      default:
        throw new UnpicklingError(`unknown pickle opcode 0x${op.toString(16)} at offset ${opPos}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------- writing

/** Values the pickler writes: null, booleans, numbers (float when not an integer), bigints, strings,
 * byte arrays, arrays (lists), PyTuple, Maps and plain objects (dicts), and anything `persistent` maps. */
export interface PicklerOptions {
  /** For values the pickler does not know: write them through `w` (returns true), or refuse (false). */
  custom?: (value: unknown, w: Pickler) => boolean;
}

/**
 * Writes protocol-2 pickles with only the opcodes torch.load(weights_only=True) accepts (no FRAME, no
 * MEMOIZE, no SHORT_BINUNICODE).
 */
export class Pickler {
  readonly #chunks: Uint8Array[] = [];
  #memo = 0;
  constructor(readonly options: PicklerOptions = {}) {}

  #bytes(...b: number[]): void {
    this.#chunks.push(Uint8Array.from(b));
  }
  #u32(op: number, n: number): void {
    const b = new Uint8Array(5);
    b[0] = op;
    new DataView(b.buffer).setUint32(1, n, true);
    this.#chunks.push(b);
  }
  #put(): void {
    const i = this.#memo++;
    if (i < 256) this.#bytes(0x71, i);
    else this.#u32(0x72, i);
  }

  /** MARK, and the opcode closing it. */
  mark(): void {
    this.#bytes(0x28);
  }
  op(code: number): void {
    this.#bytes(code);
  }
  global(module: string, name: string): void {
    this.#chunks.push(new TextEncoder().encode(`c${module}\n${name}\n`));
    this.#put();
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.#u32(0x58, b.length);
    this.#chunks.push(b);
    this.#put();
  }
  int(n: number | bigint): void {
    if (typeof n === 'number' && n >= 0 && n < 256) return this.#bytes(0x4b, n);
    if (typeof n === 'number' && n >= 0 && n < 65536) return this.#bytes(0x4d, n & 0xff, n >> 8);
    if (typeof n === 'number' && n >= -0x80000000 && n <= 0x7fffffff) {
      const b = new Uint8Array(5);
      b[0] = 0x4a;
      new DataView(b.buffer).setInt32(1, n, true);
      this.#chunks.push(b);
      return;
    }
    let v = BigInt(n);
    const out: number[] = [];
    for (;;) {
      out.push(Number(v & 0xffn));
      v >>= 8n;
      if ((v === 0n && !(out[out.length - 1] & 0x80)) || (v === -1n && out[out.length - 1] & 0x80)) break;
    }
    this.#bytes(0x8a, out.length, ...out);
  }
  float(x: number): void {
    const b = new Uint8Array(9);
    b[0] = 0x47;
    new DataView(b.buffer).setFloat64(1, x, false);
    this.#chunks.push(b);
  }
  tuple(items: readonly unknown[]): void {
    if (items.length === 0) return this.#bytes(0x29);
    if (items.length <= 3) {
      items.forEach((i) => this.value(i));
      this.#bytes([0x85, 0x86, 0x87][items.length - 1]);
    } else {
      this.mark();
      items.forEach((i) => this.value(i));
      this.#bytes(0x74);
    }
    this.#put();
  }
  /** A dict; with ordered = true, a collections.OrderedDict. */
  dict(entries: Iterable<[unknown, unknown]>, ordered = false): void {
    if (ordered) {
      this.global('collections', 'OrderedDict');
      this.#bytes(0x29, 0x52); // () REDUCE
    } else {
      this.#bytes(0x7d);
    }
    this.#put();
    let open = false;
    let n = 0;
    for (const [k, v] of entries) {
      if (!open) {
        this.mark();
        open = true;
      }
      this.value(k);
      this.value(v);
      if (++n % 1000 === 0) {
        this.#bytes(0x75);
        open = false;
      }
    }
    if (open) this.#bytes(0x75);
  }
  value(v: unknown): void {
    if (this.options.custom?.(v, this)) return;
    if (v === null || v === undefined) return this.#bytes(0x4e);
    if (v === true) return this.#bytes(0x88);
    if (v === false) return this.#bytes(0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') return Number.isInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === 'string') return this.string(v);
    if (v instanceof Uint8Array) {
      this.#u32(0x42, v.length);
      this.#chunks.push(v);
      return this.#put();
    }
    if (v instanceof PyTuple) return this.tuple(v);
    if (Array.isArray(v)) {
      this.#bytes(0x5d);
      this.#put();
      if (v.length) {
        this.mark();
        v.forEach((i) => this.value(i));
        this.#bytes(0x65);
      }
      return;
    }
    if (v instanceof Map) return this.dict(v.entries(), true);
    if (typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
      return this.dict(Object.entries(v as object));
    }
    throw new TypeError(`cannot pickle ${Object.prototype.toString.call(v)}`);
  }
  /** The whole pickle: PROTO 2, the value, STOP. */
  dump(v: unknown): Uint8Array {
    this.#chunks.length = 0;
    this.#memo = 0;
    this.#bytes(0x80, 2);
    this.value(v);
    this.#bytes(0x2e);
    const total = this.#chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
