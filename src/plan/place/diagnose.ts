import { adjacency, firstLink, reachTable, relaxedReach } from './core.js';
import { bytesBefore, type Inst, segNeed } from './instance.js';

const MB = 1 << 20;
const mb = (b: number): string => `${(b / MB).toFixed(1)} MB`;

/** Memory a segment needs on a node under the memory model, bytes. */
function needed(I: Inst, s: number, j: number): number {
  return I.margin * segNeed(I, s, j) + I.overheadBytes;
}

function blockName(I: Inst, i: number): string {
  const c = I.model.blocks[i]!.cutId;
  return c !== undefined ? `block ${i} (ending at cut ${c})` : `block ${i}`;
}

/** Why no placement exists: the first of these that holds, as one sentence. */
export function explainInfeasible(I: Inst, provenByExact: boolean): string {
  const { n, N } = I;
  const model = `model '${I.model.name}'`;
  let biggest = 0;
  for (let j = 1; j < N; j++) if (I.memLimit[j]! > I.memLimit[biggest]!) biggest = j;
  for (let i = 0; i < n; i++) {
    if (needed(I, i, i) > I.memLimit[biggest]!) {
      return `${model}: ${blockName(I, i)} needs ${mb(needed(I, i, i))} (weights ${mb(I.wpre[i + 1]! - I.wpre[i]!)}, activations ${mb(I.act[i]!)}, margin ${I.margin}, overhead ${mb(I.overheadBytes)}) but the largest node '${I.names[biggest]}' has ${mb(I.memLimit[biggest]!)}`;
    }
  }
  if (I.entry >= 0) {
    let links = 0;
    for (let w = 0; w < N; w++) if (w !== I.entry && I.bw[I.entry * N + w]! > 0) links++;
    if (links === 0 && needed(I, 0, n - 1) > I.memLimit[I.entry]!) {
      return `${model}: entry '${I.names[I.entry]}' has no links and cannot hold the whole model (needs ${mb(needed(I, 0, n - 1))}, has ${mb(I.memLimit[I.entry]!)})`;
    }
  }
  if (I.maxStages === 1) {
    let fits = -1;
    for (let j = 0; j < N; j++) if (needed(I, 0, n - 1) <= I.memLimit[j]!) fits = j;
    if (fits < 0) return `${model}: with one stage a node must hold the whole model (needs ${mb(needed(I, 0, n - 1))}); the largest node '${I.names[biggest]}' has ${mb(I.memLimit[biggest]!)}`;
  }
  const caps = Array.from(I.memCap).sort((a, b) => b - a).slice(0, I.maxStages);
  const total = caps.reduce((a, b) => a + Math.max(0, b), 0);
  if (I.wpre[n]! > total) {
    return `${model}: its weights need ${mb(I.wpre[n]! * I.margin)} (with margin ${I.margin}) but the ${caps.length} largest nodes offer ${mb(total * I.margin)} after ${mb(I.overheadBytes)} runtime overhead each${I.maxStages < N ? ` (--max-stages ${I.maxStages})` : ''}`;
  }
  const reach = relaxedReach(I, Infinity, reachTable(I, Infinity), adjacency(I));
  if (reach < n) {
    let starts = 0;
    for (let w = 0; w < N; w++) if (firstLink(I, w) < Infinity) starts++;
    if (I.entry >= 0 && starts === 0) return `${model}: entry '${I.names[I.entry]}' is disconnected`;
    const b = Math.min(reach, n - 1);
    return `${model}: no chain of linked nodes${I.entry >= 0 ? ` from the entry '${I.names[I.entry]}'` : ''} can continue past ${blockName(I, Math.max(0, b - 1))}: no linked node has room for ${blockName(I, b)} onward (it receives ${mb(bytesBefore(I, b))}, needs at least ${mb(needed(I, b, b))})`;
  }
  return provenByExact
    ? `${model}: no chain of distinct linked nodes${I.maxStages < N ? ` with at most ${I.maxStages} stages` : ''} can hold it in order (each node holds one segment)`
    : `${model}: the solver found no chain of distinct linked nodes that holds it in order; try --solver exact to prove whether one exists`;
}
