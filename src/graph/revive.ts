/**
 * Protobuf messages passed between threads by structured clone arrive as plain objects: the
 * clone keeps their own fields but not their prototype, and ONNX is proto2, where protobuf-es
 * keeps every unset field's default on the prototype (`node.domain` reads '' only through it).
 * `reviveMessages` puts the prototypes back, in place, on every message inside `value`.
 */
import { create, createRegistry } from '@bufbuild/protobuf';
import { file_onnx } from 'onnx-buf';

let protos: Map<string, object | null> | null = null;
let registry: ReturnType<typeof createRegistry> | null = null;

function prototypeOf(typeName: string): object | null {
  protos ??= new Map();
  let p = protos.get(typeName);
  if (p === undefined) {
    const desc = (registry ??= createRegistry(file_onnx)).getMessage(typeName);
    p = desc ? Object.getPrototypeOf(create(desc)) as object : null;
    protos.set(typeName, p);
  }
  return p;
}

/** Restore the prototype of every ONNX message reachable from `value` (arrays, Maps, objects). */
export function reviveMessages(value: unknown): void {
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) continue;
    seen.add(v);
    if (Array.isArray(v)) {
      // Repeated fields are homogeneous: an array of numbers or strings holds no message.
      if (v.length && typeof v[0] === 'object') for (const x of v) stack.push(x);
      continue;
    }
    if (v instanceof Map) { for (const x of v.values()) stack.push(x); continue; }
    if (v instanceof Set) continue;
    const t = (v as { $typeName?: unknown }).$typeName;
    if (typeof t === 'string' && Object.getPrototypeOf(v) === Object.prototype) {
      const p = prototypeOf(t);
      if (p && p !== Object.prototype) Object.setPrototypeOf(v, p);
    }
    for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) stack.push(x);
  }
}
