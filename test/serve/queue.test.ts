/** WorkQueue order: shortest expected job first, FIFO among equals, an age bound against starvation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/serve/queue.js';

/** A job that records its name when it starts and finishes when `gate` is opened. */
function gated(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((r) => { open = r; });
  return { open, wait };
}

async function order(q: WorkQueue, jobs: { name: string; costS?: number }[], beforeStart?: () => Promise<void>): Promise<string[]> {
  const ran: string[] = [];
  const g = gated();
  // The first job holds the single slot, so every other one waits and the queue must choose.
  const first = q.push(async () => { await g.wait; });
  const all = jobs.map((j) => q.push(async () => { ran.push(j.name); }, j.costS === undefined ? {} : { costS: j.costS }));
  if (beforeStart) await beforeStart();
  g.open();
  await Promise.all([first, ...all]);
  return ran;
}

test('shortest expected job first, FIFO among equal estimates', async () => {
  const q = new WorkQueue(16, 1, 'test');
  const ran = await order(q, [
    { name: 'long1', costS: 0.5 }, { name: 'short1', costS: 0.01 }, { name: 'long2', costS: 0.5 },
    { name: 'short2', costS: 0.01 }, { name: 'mid', costS: 0.1 }, { name: 'short3', costS: 0.01 },
  ]);
  assert.deepEqual(ran, ['short1', 'short2', 'short3', 'mid', 'long1', 'long2']);
});

test('without estimates, and with order fifo, it is a plain FIFO', async () => {
  assert.deepEqual(await order(new WorkQueue(16, 1, 'test'), [{ name: 'a' }, { name: 'b' }, { name: 'c' }]), ['a', 'b', 'c']);
  const fifo = new WorkQueue(16, 1, 'test', { order: 'fifo' });
  assert.deepEqual(await order(fifo, [{ name: 'a', costS: 1 }, { name: 'b', costS: 0.1 }, { name: 'c', costS: 0.01 }]), ['a', 'b', 'c']);
});

test('unknown cost counts as 0: a job without an estimate is not starved behind estimated ones', async () => {
  const ran = await order(new WorkQueue(16, 1, 'test'), [{ name: 'est', costS: 0.2 }, { name: 'new' }, { name: 'bad', costS: NaN }]);
  assert.deepEqual(ran, ['new', 'bad', 'est']);
});

test('a job waiting longer than ageFactor × the longest expected cost goes first', async () => {
  // Longest expected cost 0.01 s, factor 2: after 50 ms of waiting the oldest job is overdue.
  const q = new WorkQueue(16, 1, 'test', { ageFactor: 2 });
  const ran = await order(q, [{ name: 'old-long', costS: 0.01 }, { name: 'short', costS: 0.001 }, { name: 'short2', costS: 0.001 }],
    () => new Promise((r) => setTimeout(r, 50)));
  assert.equal(ran[0], 'old-long');
  // The same jobs not yet overdue run shortest first.
  const q2 = new WorkQueue(16, 1, 'test', { ageFactor: 1e6 });
  assert.deepEqual(await order(q2, [{ name: 'old-long', costS: 0.01 }, { name: 'short', costS: 0.001 }]), ['short', 'old-long']);
});

test('a steady stream of short jobs does not starve a long one', async () => {
  // Each short job takes ~2 ms; new short jobs keep arriving while the long one waits.
  const q = new WorkQueue(1000, 1, 'test', { ageFactor: 4 });
  const ran: string[] = [];
  const pending: Promise<void>[] = [];
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 3; i++) pending.push(q.push(async () => { ran.push('s'); await sleep(2); }, { costS: 0.002 }));
  pending.push(q.push(async () => { ran.push('LONG'); await sleep(2); }, { costS: 0.005 }));
  for (let i = 0; i < 40; i++) {
    pending.push(q.push(async () => { ran.push('s'); await sleep(2); }, { costS: 0.002 }));
    await sleep(1);
  }
  await Promise.all(pending);
  const at = ran.indexOf('LONG');
  assert.ok(at >= 0 && at < ran.length - 1, `the long job ran before the stream ended (at ${at} of ${ran.length})`);
});

test('a full queue still refuses, aborted jobs leave it, rejectWhere still fails a group', async () => {
  const q = new WorkQueue(2, 1, 'test');
  const g = gated();
  const first = q.push(async () => { await g.wait; });
  const a = q.push(async () => 'a', { costS: 0.3, tag: 'x' });
  const ac = new AbortController();
  const b = q.push(async () => 'b', { costS: 0.1, signal: ac.signal });
  await assert.rejects(q.push(async () => 'c', { costS: 0.01 }), (e: Error & { code?: string }) => e.code === 'KERF_ERR_OVERLOADED');
  ac.abort(new Error('gone'));
  await assert.rejects(b, /gone/);
  assert.equal(q.depth, 1);
  const c = q.push(async () => 'c', { costS: 0.01, tag: 'y' });
  assert.equal(q.rejectWhere((t) => t === 'x', Object.assign(new Error('down'), { code: 'KERF_ERR_UPSTREAM' }) as never), 1);
  await assert.rejects(a, /down/);
  g.open();
  await first;
  assert.equal(await c, 'c');
});
