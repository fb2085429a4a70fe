import { mulberry32 } from '../../util/prng.js';
import { firstLink, reachTable } from './core.js';
import { better, checkStages, type Inst, score, type Score, type Seg } from './instance.js';

/** mulberry32: a small seeded generator so baselines and benchmarks repeat exactly. */
export const rng: (seed: number) => () => number = mulberry32;

function valid(I: Inst, segs: Seg[]): Score | null {
  if (checkStages(I, segs) !== null) return null;
  const sc = score(I, segs);
  return sc.bottleneck === Infinity ? null : sc;
}

/**
 * Greedy baseline (the anchor paper's): from each start node, give the current node the
 * longest run of blocks that fits its memory, then walk to the highest-bandwidth unused
 * neighbour that can hold the next block; keep the best start.
 */
export function greedy(I: Inst): Seg[] | null {
  const { n, N } = I;
  const jm = reachTable(I, Infinity);
  let best: Seg[] | null = null;
  let bestSc: Score | null = null;
  for (let s = 0; s < N; s++) {
    if (firstLink(I, s) === Infinity) continue;
    const segs: Seg[] = [];
    const used = new Set<number>();
    let cur = s, pos = 0;
    for (;;) {
      const j = jm[cur * n + pos]!;
      if (j < pos) break;
      segs.push({ node: cur, first: pos, last: j });
      used.add(cur);
      pos = j + 1;
      if (pos === n || segs.length >= I.maxStages) break;
      let nx = -1, nb = 0;
      for (let w = 0; w < N; w++) {
        const b = I.bw[cur * N + w]!;
        if (used.has(w) || b === 0 || jm[w * n + pos]! < pos) continue;
        if (b > nb) { nb = b; nx = w; }
      }
      if (nx < 0) break;
      cur = nx;
    }
    if (pos !== n) continue;
    const sc = valid(I, segs);
    if (sc && (!bestSc || better(sc, bestSc))) { best = segs; bestSc = sc; }
  }
  return best;
}

/**
 * Random baseline: a random walk over distinct linked nodes, each taking a random number of
 * blocks that fits its memory; the first of `attempts` walks that places the whole model
 * (and can return to the entry) is returned.
 */
export function randomPlacement(I: Inst, seed: number, attempts = 1000): Seg[] | null {
  const { n, N } = I;
  const jm = reachTable(I, Infinity);
  const rand = rng(seed);
  const starts: number[] = [];
  for (let w = 0; w < N; w++) if (firstLink(I, w) < Infinity && jm[w * n]! >= 0) starts.push(w);
  if (starts.length === 0) return null;
  for (let a = 0; a < attempts; a++) {
    let cur = starts[Math.floor(rand() * starts.length)]!;
    const used = new Set<number>();
    const segs: Seg[] = [];
    let pos = 0;
    for (;;) {
      const j = jm[cur * n + pos]!;
      if (j < pos) break;
      // the last stage must end at the model's end when no stage is left
      const last = segs.length + 1 >= I.maxStages ? j : pos + Math.floor(rand() * (j - pos + 1));
      segs.push({ node: cur, first: pos, last });
      used.add(cur);
      pos = last + 1;
      if (pos === n || segs.length >= I.maxStages) break;
      const next: number[] = [];
      for (let w = 0; w < N; w++) if (!used.has(w) && I.bw[cur * N + w]! > 0 && jm[w * n + pos]! >= pos) next.push(w);
      if (next.length === 0) break;
      cur = next[Math.floor(rand() * next.length)]!;
    }
    if (pos !== n) continue;
    if (valid(I, segs)) return segs;
  }
  return null;
}
