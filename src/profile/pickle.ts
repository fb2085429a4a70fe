import { kerfError } from '../errors.js';

/**
 * A small, safe reader for Python pickles (protocols 0–5, the opcodes plain data uses).
 * It never runs code: `GLOBAL`/`STACK_GLOBAL` yield a {@link PickledClass} marker, and
 * `NEWOBJ`/`REDUCE`/`BUILD` on it yield a {@link PickledObject} holding the class name,
 * constructor arguments and the `__dict__` state, which the caller interprets.
 */
export interface PickledClass { readonly kind: 'class'; readonly module: string; readonly name: string }
export interface PickledObject {
  readonly kind: 'object';
  readonly module: string;
  readonly name: string;
  readonly args: unknown[];
  state: Record<string, unknown> | unknown;
}

const MARK = Symbol('mark');

export function isPickledObject(v: unknown): v is PickledObject {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'object' && 'state' in v;
}

/** Parse one pickle. `what` names the source in error messages. */
export function readPickle(buf: Uint8Array, what = 'pickle'): unknown {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dec = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  const stack: unknown[] = [];
  const memo: unknown[] = [];
  const len = buf.length;
  let pos = 0;
  const fail = (msg: string): never => { throw kerfError('KERF_ERR_IMPORT', `${what}: ${msg} at byte ${pos}`); };
  const need = (n: number): void => { if (pos + n > buf.length) fail('truncated pickle'); };
  const u8 = (): number => { need(1); return buf[pos++]!; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const bytes = (n: number): Uint8Array => { need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  // TextDecoder costs ~0.5 µs a call; the short ASCII keys and names of plain data skip it
  const utf8 = (n: number): string => {
    need(n);
    if (n <= 64) {
      let ascii = true;
      for (let i = pos; i < pos + n; i++) if (buf[i]! >= 0x80) { ascii = false; break; }
      if (ascii) {
        const s = String.fromCharCode.apply(null, buf.subarray(pos, pos + n) as unknown as number[]);
        pos += n;
        return s;
      }
    }
    return dec.decode(bytes(n));
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text line');
    const s = latin1.decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => { if (stack.length === 0) fail('stack underflow'); return stack.pop(); };
  const top = (): unknown => { if (stack.length === 0) fail('stack underflow'); return stack[stack.length - 1]; };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no MARK on the stack');
    const items = stack.slice(i + 1);
    stack.length = i;
    return items;
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const cls = (module: string, name: string): PickledClass => ({ kind: 'class', module, name });
  const instantiate = (c: unknown, args: unknown[]): PickledObject => {
    if (typeof c !== 'object' || c === null || (c as PickledClass).kind !== 'class') fail('object built from a non-class');
    const k = c as PickledClass;
    return { kind: 'object', module: k.module, name: k.name, args, state: undefined };
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (target instanceof Map) {
      for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
      return;
    }
    if (typeof target !== 'object' || target === null) fail('SETITEM on a non-dict');
    // defineProperty, so a key named __proto__ stays data
    for (let i = 0; i + 1 < items.length; i += 2) {
      Object.defineProperty(target, String(items[i]), { value: items[i + 1], enumerable: true, writable: true, configurable: true });
    }
  };

  for (;;) {
    if (pos >= len) fail('truncated pickle');
    const op = buf[pos++]!;
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: pos += 8; break; // FRAME (length is advisory)
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: if (pos >= len) fail('truncated pickle'); stack.push(buf[pos++]!); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(long(bytes(u32()))); break; // LONG4
      case 0x49: { // INT (protocol 0), also encodes booleans
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number(s));
        break;
      }
      case 0x4c: { // LONG (text)
        const t = line().replace(/L$/, '');
        if (!/^[+-]?\d+$/.test(t)) fail(`bad LONG '${t}'`);
        const v = BigInt(t);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x46: stack.push(Number(line())); break; // FLOAT (text)
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: { const n = Number(view.getBigUint64(pos, true)); pos += 8; stack.push(dec.decode(bytes(n))); break; } // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; plain ASCII here)
      case 0x54: stack.push(latin1.decode(bytes(i32()))); break; // BINSTRING
      case 0x55: stack.push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push({}); break; // EMPTY_DICT
      case 0x29: stack.push([]); break; // EMPTY_TUPLE (tuples become arrays)
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x64: { const o = {}; setItems(o, popMark()); stack.push(o); break; } // DICT
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to a non-list'); (l as unknown[]).push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS to a non-list'); (l as unknown[]).push(...items); break; }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x90: { const items = popMark(); const s = top(); if (s instanceof Set) for (const i of items) s.add(i); break; } // ADDITEMS
      case 0x70: memo[Number(line())] = top(); break; // PUT
      case 0x71: { if (pos >= len || stack.length === 0) fail('truncated pickle'); memo[buf[pos++]!] = stack[stack.length - 1]; break; } // BINPUT
      case 0x72: memo[u32()] = top(); break; // LONG_BINPUT
      case 0x94: memo.push(top()); break; // MEMOIZE
      case 0x67: { const k = Number(line()); if (k >= memo.length || memo[k] === undefined) fail(`unknown memo ${k}`); stack.push(memo[k]); break; } // GET
      case 0x68: { const k = u8(); if (k >= memo.length || memo[k] === undefined) fail(`unknown memo ${k}`); stack.push(memo[k]); break; } // BINGET
      case 0x6a: { const k = u32(); if (k >= memo.length || memo[k] === undefined) fail(`unknown memo ${k}`); stack.push(memo[k]); break; } // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push(cls(module, name)); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); stack.push(cls(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x81: { const args = pop(); const c = pop(); stack.push(instantiate(c, args as unknown[])); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); const c = pop(); stack.push(instantiate(c, args as unknown[])); break; } // NEWOBJ_EX
      case 0x52: { // REDUCE; protocols 0–1 build plain instances via copy_reg._reconstructor(cls, object, None)
        const args = pop() as unknown[];
        const c = pop() as PickledClass;
        const recon = c?.kind === 'class' && /^copy_?reg$/.test(c.module) && c.name === '_reconstructor';
        stack.push(recon && Array.isArray(args) ? instantiate(args[0], []) : instantiate(c, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const o = top();
        if (!isPickledObject(o)) fail('BUILD on a non-object');
        (o as PickledObject).state = state;
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
