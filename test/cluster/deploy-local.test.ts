/** The controller's deploy on the local substrate: parts staged per host by hash, stages chained, answers bitwise the whole model's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModel } from '../../src/engine/index.js';
import { LocalSubstrate } from '../../src/cluster/local.js';
import { deploy } from '../../src/cluster/deploy.js';
import { ocrModel } from '../support/shared.js';
import { alive, bytesOf, inferBinary, inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';

const MODEL = ocrModel('cls');
const SHAPE = { x: [1, 3, 48, 192] };

test('deploy on 3 (local) hosts sends each worker only its part, answers equal the whole model, close leaves nothing', async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const cuts = thirds(prep);
  const sub = new LocalSubstrate({ hosts: ['a', 'b', 'c'] });
  const events: string[] = [];
  sub.on('event', (e) => events.push(e.type));
  const d = await deploy(sub, { model: MODEL, inputShapes: SHAPE, cuts, hostOf: ['a', 'b', 'c'] });
  try {
    assert.deepEqual(d.staged.map((s) => [s.onHost, s.what]).sort(), [['a', 'whole model'], ['b', `part 1 (${cuts.join(',')})`], ['c', `part 2 (${cuts.join(',')})`]]);
    assert.ok(d.staged.find((s) => s.onHost === 'b')!.part.bytes < d.staged.find((s) => s.onHost === 'a')!.part.bytes);
    const st = await sub.status('b');
    assert.equal(st.stages.length, 1);
    assert.ok(st.stages[0]!.alive && st.stages[0]!.rss! > 0);
    for (const feeds of inputsFor(prep, 3)) {
      const want = await reference(prep, feeds);
      const r = await inferBinary(d.url, d.name, feeds);
      assert.equal(r.status, 200, r.error);
      for (const [k, t] of Object.entries(want)) assert.ok(bytesOf(t).equals(r.outputs[k]!), `output ${k} differs`);
    }
  } finally {
    await d.close();
  }
  const pids = d.processes.map((p) => p.pid);
  for (let i = 0; i < 40 && pids.some(alive); i++) await sleep(50);
  assert.deepEqual(pids.filter(alive), []);
  assert.deepEqual(events, [], 'stopping is not a loss');
  await sub.close();
  await assert.rejects(sub.stage('a', MODEL), { code: 'KERF_ERR_CLOSED' });
});

test('a stage that dies is reported as a stage-exit event', async () => {
  const prep = await prepareModel(MODEL, { inputShapes: SHAPE });
  const sub = new LocalSubstrate();
  const d = await deploy(sub, { model: MODEL, inputShapes: SHAPE, cuts: [thirds(prep)[0]] });
  try {
    const lost = new Promise<{ type: string; stage?: string }>((r) => sub.once('event', r));
    process.kill(d.processes[1]!.pid, 'SIGKILL');
    const e = await lost;
    assert.equal(e.type, 'stage-exit');
    assert.equal(e.stage, d.processes[1]!.name);
  } finally {
    await d.close();
    await sub.close();
  }
});
