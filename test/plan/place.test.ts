import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  anchorCluster, DEFAULT_WIRE_CPU_MS_PER_MB, place, placementLowerBound, rng, validateCluster, zooPlaceModel,
  type Cluster, type Placement, type PlaceModel,
} from '../../src/plan/place/index.js';

const MB = 2 ** 20;

/** A random model: `n` blocks with random compute, output, weights and activations. */
function randomModel(rand: () => number, n: number): PlaceModel {
  const blocks = [];
  for (let i = 0; i < n; i++) {
    blocks.push({
      seconds: 0.001 + rand() * 0.05,
      outputBytes: Math.floor(1e4 + rand() * 2e6),
      paramBytes: Math.floor(rand() * 20 * MB),
      activationBytes: Math.floor(rand() * 4 * MB),
      cutId: i,
    });
  }
  const m: PlaceModel = { name: 'rand', inputBytes: 6e5, blocks };
  // sometimes a call overhead per segment run (src/plan/cost.ts tierServiceS)
  if (rand() < 0.4) m.callOverheadS = rand() * 0.01;
  return m;
}

/** A random cluster: memory 16..96 MB, speed 0.5..2, links with probability `density`. */
function randomCluster(rand: () => number, N: number, density: number, entry: boolean): Cluster {
  const nodes = [];
  // wire CPU: the default, none, or per node (up to 10 ms/MB, enough to move the optimum)
  const wireMode = rand();
  for (let i = 0; i < N; i++) {
    const node: Cluster['nodes'][number] = { name: `n${i}`, memoryMB: 16 + Math.floor(rand() * 80), speed: 0.5 + rand() * 1.5 };
    if (wireMode > 0.6) node.wireCpuMsPerMB = rand() < 0.2 ? 0 : rand() * 10;
    if (rand() < 0.3) node.fixedMs = rand() * 8;
    nodes.push(node);
  }
  const links = [];
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      if (rand() < density) links.push({ from: `n${i}`, to: `n${j}`, bandwidthMbps: 5 + rand() * 200, rttMs: rand() * 4 });
      // sometimes an asymmetric reverse direction
      if (rand() < 0.2) links.push({ from: `n${j}`, to: `n${i}`, bandwidthMbps: 5 + rand() * 200 });
    }
  }
  const dedup = new Map(links.map((l) => [`${l.from}>${l.to}`, l]));
  const c: Cluster = { schema: 'kerf.cluster/v1', nodes, links: [...dedup.values()], messageOverheadMs: 0.3, memory: { margin: 1, overheadMB: 0 } };
  if (wireMode < 0.2) c.wireCpuMsPerMB = 0;
  if (entry) c.entry = 'n0';
  return validateCluster(c, 'test');
}

/**
 * Brute force, independent of the solvers: every sequence of distinct linked nodes (up to
 * maxStages), and for each the best segmentation by a plain min-max recursion over all
 * segment ends. Returns the optimal bottleneck, or Infinity when nothing fits.
 */
function bruteForce(m: PlaceModel, c: Cluster, maxStages: number): number {
  const N = c.nodes.length;
  const n = m.blocks.length;
  const idx = new Map(c.nodes.map((x, i) => [x.name, i]));
  const bw = new Map<string, number>();
  const explicit = new Set(c.links.map((l) => `${l.from}>${l.to}`));
  for (const l of c.links) {
    bw.set(`${idx.get(l.from)}>${idx.get(l.to)}`, l.bandwidthMbps);
    if (!explicit.has(`${l.to}>${l.from}`)) bw.set(`${idx.get(l.to)}>${idx.get(l.from)}`, l.bandwidthMbps);
  }
  const ovh = (c.messageOverheadMs ?? 0.1) / 1000;
  const link = (v: number, w: number, bytes: number): number => {
    if (v === w) return 0;
    const b = bw.get(`${v}>${w}`);
    return b === undefined ? Infinity : bytes / (b * 1e6 / 8) + ovh;
  };
  const entry = c.entry !== undefined ? idx.get(c.entry)! : -1;
  const fits = (w: number, s: number, j: number): boolean => {
    let wgt = 0, act = 0;
    for (let i = s; i <= j; i++) { wgt += m.blocks[i]!.paramBytes; act = Math.max(act, m.blocks[i]!.activationBytes!); }
    return wgt + act <= c.nodes[w]!.memoryMB * MB;
  };
  const res = m.blocks[n - 1]!.outputBytes;
  const ret = entry >= 0;
  const wireOf = (w: number): number => (c.nodes[w]!.wireCpuMsPerMB ?? c.wireCpuMsPerMB ?? DEFAULT_WIRE_CPU_MS_PER_MB) / 1000 / MB;
  // a stage's time: its blocks and one call overhead, its node's fixed time, and the node's CPU
  // for the bytes it moves: its input (none from itself as the entry) and output, and, with an
  // entry, the result it receives from downstream and sends back to its caller
  const comp = (w: number, s: number, j: number): number => {
    let t = m.callOverheadS ?? 0;
    for (let i = s; i <= j; i++) t += m.blocks[i]!.seconds;
    const ext = entry >= 0 && entry !== w;
    const first = s === 0 && !ext;
    let bytes = (s > 0 ? m.blocks[s - 1]!.outputBytes : ext ? m.inputBytes : 0) + (j < n - 1 ? m.blocks[j]!.outputBytes : 0);
    if (ret) bytes += (first ? 0 : res) + (j < n - 1 ? res : 0);
    const speed = c.nodes[w]!.speed ?? 1;
    return (t + wireOf(w) * bytes) / speed + (c.nodes[w]!.fixedMs ?? 0) / 1000;
  };
  // a hop's busy time: the bytes out, and the result back over its reverse direction
  const hop = (v: number, w: number, bytes: number): number => Math.max(link(v, w, bytes), ret ? link(w, v, res) : 0);
  let best = Infinity;
  const seq: number[] = [];
  // best segmentation of blocks s.. over seq[k..]
  const seg = (k: number, s: number): number => {
    const w = seq[k]!;
    if (k === seq.length - 1) {
      if (!fits(w, s, n - 1)) return Infinity;
      return comp(w, s, n - 1);
    }
    let b = Infinity;
    for (let j = s; j < n - (seq.length - 1 - k); j++) {
      if (!fits(w, s, j)) break;
      const here = Math.max(comp(w, s, j), hop(w, seq[k + 1]!, m.blocks[j]!.outputBytes));
      if (here >= b) continue;
      b = Math.min(b, Math.max(here, seg(k + 1, j + 1)));
    }
    return b;
  };
  const dfs = (): void => {
    if (seq.length > 0) {
      let first = 0;
      if (entry >= 0 && seq[0] !== entry) {
        // the entry's gateway: its fixed time and wire CPU for the input and the result
        const gw = (c.nodes[entry]!.fixedMs ?? 0) / 1000 + (wireOf(entry) / (c.nodes[entry]!.speed ?? 1)) * (m.inputBytes + res);
        first = Math.max(hop(entry, seq[0]!, m.inputBytes), gw);
      }
      best = Math.min(best, Math.max(first, seg(0, 0)));
    }
    if (seq.length >= maxStages || seq.length >= n) return;
    for (let w = 0; w < N; w++) {
      if (seq.includes(w)) continue;
      if (seq.length > 0 && link(seq[seq.length - 1]!, w, 0) === Infinity) continue;
      seq.push(w);
      dfs();
      seq.pop();
    }
  };
  dfs();
  return best;
}

function tryPlace(m: PlaceModel, c: Cluster, opts: Parameters<typeof place>[2]): Placement | null {
  try {
    return place(m, c, opts);
  } catch (e) {
    assert.equal((e as { code?: string }).code, 'KERF_ERR_PLACE', String(e));
    return null;
  }
}

/** Independent check of a placement against the model and cluster. */
function assertValid(p: Placement, m: PlaceModel, c: Cluster): void {
  let next = 0;
  const seen = new Set<string>();
  for (const s of p.stages) {
    assert.equal(s.blocks.first, next);
    assert.ok(!seen.has(s.node), `node ${s.node} used twice`);
    seen.add(s.node);
    let wgt = 0, act = 0;
    for (let i = s.blocks.first; i <= s.blocks.last; i++) { wgt += m.blocks[i]!.paramBytes; act = Math.max(act, m.blocks[i]!.activationBytes!); }
    const node = c.nodes.find((x) => x.name === s.node)!;
    assert.ok(wgt + act <= node.memoryMB * MB, `stage ${s.index} needs ${wgt + act} > ${node.memoryMB} MB`);
    assert.ok(s.memoryBytes <= s.memoryLimitBytes);
    next = s.blocks.last + 1;
  }
  assert.equal(next, m.blocks.length);
  assert.ok(p.lowerBound <= p.bottleneck.seconds * (1 + 1e-12));
}

describe('exact solver', () => {
  it('equals brute force on random instances up to 8 nodes and 30 blocks', () => {
    const rand = rng(42);
    let feasible = 0, infeasible = 0;
    for (let t = 0; t < 60; t++) {
      const N = 2 + Math.floor(rand() * 7);
      // all sequences of 8 nodes are many: keep blocks or stages smaller there
      const n = 1 + Math.floor(rand() * (N >= 7 ? 12 : 30));
      const maxStages = N >= 7 && n > 8 ? 4 : N;
      const m = randomModel(rand, n);
      const c = randomCluster(rand, N, 0.3 + rand() * 0.7, rand() < 0.7);
      const want = bruteForce(m, c, maxStages);
      const p = tryPlace(m, c, { solver: 'exact', maxStages });
      if (want === Infinity) {
        assert.equal(p, null, `trial ${t}: brute force finds nothing but exact placed it`);
        infeasible++;
        continue;
      }
      assert.ok(p, `trial ${t}: brute force ${want} but exact found nothing`);
      assert.ok(p.optimal);
      assert.ok(Math.abs(p.bottleneck.seconds - want) <= 1e-9 * want, `trial ${t}: exact ${p.bottleneck.seconds} vs brute force ${want}`);
      assert.ok(p.stages.length <= maxStages);
      assertValid(p, m, c);
      feasible++;
    }
    assert.ok(feasible >= 20 && infeasible >= 3, `${feasible} feasible, ${infeasible} infeasible trials: too few of one kind to mean much`);
  });

  it('breaks bottleneck ties by latency', () => {
    // two equal nodes, links far faster than compute: one stage each way has the same
    // bottleneck only when split evenly; with one stage allowed the latency decides
    const m: PlaceModel = { name: 't', inputBytes: 1000, blocks: [0, 1, 2, 3].map(() => ({ seconds: 0.01, outputBytes: 1000, paramBytes: MB, activationBytes: 0 })) };
    const c = validateCluster({
      schema: 'kerf.cluster/v1', entry: 'a', memory: { margin: 1, overheadMB: 0 },
      nodes: [{ name: 'a', memoryMB: 64 }, { name: 'b', memoryMB: 64 }],
      links: [{ from: 'a', to: 'b', bandwidthMbps: 1000, rttMs: 50 }],
    });
    const p = place(m, c, { solver: 'exact', objective: 'comm' });
    // comm ignores compute: staying on the entry costs no link at all and no hop latency
    assert.equal(p.stages.length, 1);
    assert.equal(p.stages[0]!.node, 'a');
    assert.equal(p.bottleneck.seconds, 0);
  });

  it('counts the CPU a stage spends on the bytes it moves, and cuts where fewer bytes cross', () => {
    // four equal blocks on two equal nodes; the cut after block 1 carries 8 MB, after block 0
    // and block 2 only 1 KB. Without wire CPU the balanced cut (after block 1) wins; at
    // 10 ms/MB it costs each side 80 ms, so an unbalanced cut with small transfers wins.
    const outs = [1000, 8 * MB, 1000, 1000];
    const m: PlaceModel = { name: 't', inputBytes: 1000, blocks: outs.map((o) => ({ seconds: 0.02, outputBytes: o, paramBytes: MB, activationBytes: 0 })) };
    const cl = (wire: number): Cluster => validateCluster({
      schema: 'kerf.cluster/v1', entry: 'a', wireCpuMsPerMB: wire, messageOverheadMs: 0, memory: { margin: 1, overheadMB: 0 },
      nodes: [{ name: 'a', memoryMB: 64 }, { name: 'b', memoryMB: 64 }],
      links: [{ from: 'a', to: 'b', bandwidthMbps: 1e6 }],
    });
    for (const solver of ['exact', 'scalable'] as const) {
      const p0 = place(m, cl(0), { solver });
      assert.equal(p0.stages.length, 2);
      assert.equal(p0.stages[0]!.blocks.last, 1, solver);
      assert.ok(Math.abs(p0.bottleneck.seconds - 0.04) < 1e-6);
      const p1 = place(m, cl(10), { solver });
      const cut = p1.stages.length === 2 ? p1.stages[0]!.blocks.last : -1;
      assert.ok(cut === 0 || cut === 2, `${solver}: cut after block ${cut}`);
      // 3 blocks of compute + the 1 KB crossings: 60 ms and a little wire
      assert.ok(p1.bottleneck.seconds > 0.06 && p1.bottleneck.seconds < 0.0601, String(p1.bottleneck.seconds));
      const wire = p1.stages.reduce((a, s) => a + s.wireSeconds, 0);
      assert.ok(wire > 0 && wire < 0.0001);
    }
  });

  it('returns its best with a proven bound when stopped early', () => {
    const m = zooPlaceModel('resnet50');
    const c = anchorCluster({ nodes: 12, seed: 3, memoryMB: 128 });
    let calls = 0;
    const p = place(m, c, { solver: 'exact', shouldStop: () => ++calls > 1 });
    assertValid(p, m, c);
    const full = place(m, c, { solver: 'exact' });
    assert.ok(full.optimal);
    assert.ok(p.lowerBound <= full.bottleneck.seconds * (1 + 1e-12), 'the proven bound must not exceed the optimum');
    assert.ok(p.bottleneck.seconds >= full.bottleneck.seconds * (1 - 1e-12));
    if (!p.optimal) assert.ok(p.gap >= 0);
  });
});

describe('scalable solver and baselines', () => {
  it('keep memory, never lose to greedy, and stay above the lower bound', () => {
    const rand = rng(7);
    for (let t = 0; t < 25; t++) {
      const N = 3 + Math.floor(rand() * 12);
      const m = randomModel(rand, 5 + Math.floor(rand() * 40));
      const c = randomCluster(rand, N, 0.5 + rand() * 0.5, true);
      const s = tryPlace(m, c, { solver: 'scalable' });
      const g = tryPlace(m, c, { solver: 'greedy' });
      const r = tryPlace(m, c, { solver: 'random', seed: t });
      for (const p of [s, g, r]) if (p) assertValid(p, m, c);
      if (g) assert.ok(s && s.bottleneck.seconds <= g.bottleneck.seconds * (1 + 1e-12), `trial ${t}: scalable worse than greedy`);
      if (s && N <= 10) {
        const e = place(m, c, { solver: 'exact' });
        assert.ok(e.bottleneck.seconds <= s.bottleneck.seconds * (1 + 1e-12));
        assert.ok(placementLowerBound(m, c) <= e.bottleneck.seconds * (1 + 1e-12), `trial ${t}: lower bound above the optimum`);
      }
    }
  });

  it('places a 1,000-block model on 100 nodes', () => {
    const rand = rng(5);
    const m = randomModel(rand, 1000);
    const c = anchorCluster({ nodes: 100, seed: 11, memoryMB: 'mixed', memory: { margin: 1, overheadMB: 0 } });
    const p = place(m, c, { solver: 'scalable' });
    assertValid(p, m, c);
    assert.ok(p.stages.length >= 2);
  });
});

describe('memory model', () => {
  it('estimates activations as input + output and applies margin and overhead', () => {
    const m: PlaceModel = { name: 'e', inputBytes: 4 * MB, blocks: [{ seconds: 0.01, outputBytes: 2 * MB, paramBytes: 10 * MB }, { seconds: 0.01, outputBytes: MB, paramBytes: 10 * MB }] };
    const c = validateCluster({ schema: 'kerf.cluster/v1', entry: 'a', memory: { margin: 1.5, overheadMB: 8 }, nodes: [{ name: 'a', memoryMB: 1000 }], links: [] });
    const p = place(m, c);
    // weights 20 MB + peak activation max(4 + 2, 2 + 1) = 6 MB, × 1.5 + 8 MB
    assert.equal(p.stages[0]!.memoryBytes, Math.ceil(1.5 * 26 * MB + 8 * MB));
    assert.equal(p.memoryModel.activations, 'estimated');
  });
});

describe('infeasible clusters', () => {
  const m: PlaceModel = { name: 'big', inputBytes: MB, blocks: [10, 90, 10].map((w) => ({ seconds: 0.01, outputBytes: MB, paramBytes: w * MB, activationBytes: MB })) };
  const err = (c: unknown): string => {
    try {
      place(m, validateCluster(c), {});
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'KERF_ERR_PLACE');
      return (e as Error).message;
    }
    assert.fail('expected KERF_ERR_PLACE');
  };
  const base = { schema: 'kerf.cluster/v1', memory: { margin: 1, overheadMB: 0 } };
  it('names a block that fits no node', () => {
    const msg = err({ ...base, entry: 'a', nodes: [{ name: 'a', memoryMB: 64 }, { name: 'b', memoryMB: 80 }], links: [{ from: 'a', to: 'b', bandwidthMbps: 10 }] });
    assert.match(msg, /block 1 needs 91\.0 MB.*largest node 'b' has 80\.0 MB/);
  });
  it('says when the entry is disconnected', () => {
    const msg = err({ ...base, entry: 'a', nodes: [{ name: 'a', memoryMB: 32 }, { name: 'b', memoryMB: 128 }], links: [] });
    assert.match(msg, /entry 'a' has no links/);
  });
  it('says when the cluster lacks memory in total', () => {
    const msg = err({ ...base, nodes: [{ name: 'a', memoryMB: 95 }, { name: 'b', memoryMB: 12 }], links: [{ from: 'a', to: 'b', bandwidthMbps: 10 }] });
    assert.match(msg, /weights need 110\.0 MB.*2 largest nodes offer 107\.0 MB/);
  });
  it('says when no chain of linked nodes continues', () => {
    // a holds block 0, only c can hold block 1, but a and c are not linked
    const msg = err({ ...base, entry: 'a', nodes: [{ name: 'a', memoryMB: 20 }, { name: 'b', memoryMB: 20 }, { name: 'c', memoryMB: 200 }], links: [{ from: 'a', to: 'b', bandwidthMbps: 10 }] });
    assert.match(msg, /no chain of linked nodes from the entry 'a' can continue past block 0/);
  });
});

describe('cluster file', () => {
  const ok = { schema: 'kerf.cluster/v1', nodes: [{ name: 'a', memoryMB: 64 }, { name: 'b', memoryMB: 64 }], links: [{ from: 'a', to: 'b', bandwidthMbps: 10 }] };
  const bad = (doc: unknown, re: RegExp): void => {
    assert.throws(() => validateCluster(doc, 'c.yaml'), (e: Error & { code?: string }) => e.code === 'KERF_ERR_PLACE' && re.test(e.message));
  };
  it('accepts a valid file and freezes it', () => {
    const c = validateCluster(ok);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.nodes[0]));
  });
  it('rejects the first bad field, naming it', () => {
    bad({ ...ok, schema: 'x' }, /c\.yaml: field 'schema'/);
    bad({ ...ok, nodes: [{ name: 'a', memoryMB: -1 }] }, /node 'a': field 'memoryMB'/);
    bad({ ...ok, nodes: [...ok.nodes, { name: 'a', memoryMB: 1 }] }, /duplicate node name 'a'/);
    bad({ ...ok, links: [{ from: 'a', to: 'z', bandwidthMbps: 1 }] }, /links\[0\]: field 'to' names no node/);
    bad({ ...ok, entry: 'q' }, /field 'entry' names no node/);
    bad({ ...ok, links: [{ from: 'a', to: 'b', bandwidthMbps: 1, speed: 2 }] }, /unknown field 'speed'/);
  });
  it('makes links symmetric unless both directions are given', () => {
    const m: PlaceModel = { name: 's', inputBytes: 1e6, blocks: [{ seconds: 0.001, outputBytes: 1e6, paramBytes: 50 * MB, activationBytes: 0 }] };
    // entry a cannot hold the block; b can; a→b is 8 Mbit/s (1 s per MB), b→a 80 Mbit/s
    const c = validateCluster({
      schema: 'kerf.cluster/v1', entry: 'a', messageOverheadMs: 0, memory: { margin: 1, overheadMB: 0 },
      nodes: [{ name: 'a', memoryMB: 10 }, { name: 'b', memoryMB: 64 }],
      links: [{ from: 'a', to: 'b', bandwidthMbps: 8 }, { from: 'b', to: 'a', bandwidthMbps: 80 }],
    });
    const p = place(m, c);
    assert.equal(p.links[0]!.seconds, 1);
    assert.equal(p.links[1]!.seconds, 0.1);
    const sym = validateCluster({ ...c, links: [c.links[0]] });
    assert.equal(place(m, sym).links[1]!.seconds, 1);
  });
});

describe('built-in architectures', () => {
  // published figures: multiply-accumulates and parameters at 224×224
  const cases: [string, number, number][] = [['resnet50', 4.1e9, 25.6e6], ['mobilenetv2', 300e6, 3.5e6], ['inception', 1.5e9, 6.8e6]];
  for (const [name, macs, params] of cases) {
    it(`${name} matches its published MACs and parameters within 6%`, () => {
      const m = zooPlaceModel(name as 'resnet50');
      const f = m.blocks.reduce((a, b) => a + b.flops!, 0) / 2;
      const p = m.blocks.reduce((a, b) => a + b.paramBytes, 0) / 4;
      assert.ok(Math.abs(f / macs - 1) < 0.06, `${name}: ${f} MACs`);
      assert.ok(Math.abs(p / params - 1) < 0.06, `${name}: ${p} params`);
      assert.equal(m.blocks.at(-1)!.outputBytes, 4000);
    });
  }
});
