/** The KerfPipeline reconcile core, step by step: new pipeline, node added, node lost, memory too
 * small, version change, failed rollout, hand edits, deletion, bad specs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcile, reconcileList, contains } from '../../src/k8s/reconcile.js';
import { modelId } from '../../src/k8s/objects.js';
import { partKey } from '../../src/k8s/parts.js';
import type { K8sObject, PlacementState } from '../../src/k8s/types.js';
import { node, pinnedTo, pipeline, profile, profileConfigMap, spec, World, SHA_A, SHA_B } from './fixtures.js';

const three = () => [node('n1'), node('n2'), node('n3')];

/** Bring a new pipeline up: reconcile, mark its Deployments ready, reconcile (switch). */
function upAndRunning(w: World): PlacementState {
  w.step();
  const pend = w.pipeline.status!.pending!;
  w.ready(pend.id);
  w.step();
  assert.equal(w.pipeline.status!.active!.id, pend.id);
  return pend;
}

const selector = (w: World, svc: string): Record<string, string> => (w.find('Service', svc) as unknown as { spec: { selector: Record<string, string> } }).spec.selector;

type Dep = { spec: { replicas: number; template: { spec: { containers: { name: string; image: string; args: string[]; resources: { requests: Record<string, string>; limits: Record<string, string> } }[]; initContainers: { command: string[] }[] } } } };

test('a new pipeline: a placement over the nodes, a pinned Deployment and a Service per stage, the gateway, the entry Service; Ready once they are', () => {
  const w = new World(three());
  const r = w.step();
  const st = w.pipeline.status!;
  assert.ok(st.pending, 'a placement is being brought up');
  assert.equal(st.active, null);
  const pend = st.pending;
  assert.ok(pend.stages.length >= 2, `several stages (${pend.stages.length})`);
  assert.equal(w.condition('Placed').status, 'True');
  assert.equal(w.condition('Ready').status, 'False');
  assert.equal(w.condition('RolloutInProgress').status, 'False', 'a first start is no rollout');
  const kinds = r.apply.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  const vid = modelId(pend.model);
  const want = [
    'Secret/tiny-token', `Deployment/tiny-${vid}-gw`, `Service/tiny-${vid}-gw`, `Service/tiny-${vid}-first`, 'Service/tiny',
    ...pend.stages.flatMap((s) => [`Deployment/tiny-${pend.id}-s${s.index}`, `Service/tiny-${pend.id}-s${s.index}`]),
  ].sort();
  assert.deepEqual(kinds, want);
  assert.deepEqual(r.delete, []);
  for (const s of pend.stages) {
    const d = w.find('Deployment', `tiny-${pend.id}-s${s.index}`)! as unknown as Dep & K8sObject;
    assert.equal(pinnedTo(d), s.node);
    const c = d.spec.template.spec.containers[0]!;
    assert.equal(c.resources.requests.memory, `${s.memoryMiB}Mi`);
    assert.equal(c.resources.limits.memory, c.resources.requests.memory, 'memory limit = request, from the memory model');
    assert.equal(c.resources.requests.cpu, '1');
    // the stage runs exactly its part: the init container cuts it out of the model (sha256 checked)
    assert.equal(c.args[c.args.indexOf('--model') + 1], '/kerf/model/part.onnx');
    assert.ok(!c.args.includes('--blocks') && !c.args.includes('--cuts'), 'a part is a standalone model');
    const init = d.spec.template.spec.initContainers[0]!.command;
    assert.ok(init.includes(SHA_A), 'the init container checks the sha256');
    assert.equal(init[init.indexOf('--cuts') + 1], pend.cuts.join(','));
    assert.equal(init[init.indexOf('--part') + 1], String(s.index));
    assert.deepEqual(d.metadata.ownerReferences, [{ apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', name: 'tiny', uid: 'uid-tiny', controller: true, blockOwnerDeletion: true }]);
  }
  // the chain: each stage forwards to the next stage's Service
  const s0 = (w.find('Deployment', `tiny-${pend.id}-s0`) as unknown as Dep).spec.template.spec.containers[0]!.args;
  assert.equal(s0[s0.indexOf('--next') + 1], `tiny-${pend.id}-s1.edge.svc:9000`);
  const last = (w.find('Deployment', `tiny-${pend.id}-s${pend.stages.length - 1}`) as unknown as Dep).spec.template.spec.containers[0]!.args;
  assert.ok(!last.includes('--next'), 'the last stage answers itself');
  const entry = w.find('Service', 'tiny') as unknown as { spec: { selector: Record<string, string> } };
  assert.equal(entry.spec.selector['kerf.dev/model'], vid, 'the entry Service points at the version\'s gateway');
  assert.equal(selector(w, `tiny-${vid}-first`)['kerf.dev/placement'], pend.id, 'which sends to stage 0 of the placement');
  const gw = (w.find('Deployment', `tiny-${vid}-gw`) as unknown as Dep).spec.template.spec.containers[0]!.args;
  assert.equal(gw[gw.indexOf('--next') + 1], `tiny-${vid}-first.edge.svc:9000`);
  assert.ok(gw.includes('--replay'), 'the gateway keeps requests for replay');

  // nothing changed, nothing ready: nothing to apply, and it asks to be looked at again
  const again = w.step();
  assert.deepEqual(again.apply, []);
  assert.deepEqual(again.delete, []);
  assert.ok(again.requeueAfterSeconds !== null);

  w.ready(pend.id);
  w.step();
  assert.equal(w.pipeline.status!.active!.id, pend.id);
  assert.equal(w.pipeline.status!.pending, null);
  assert.equal(w.pipeline.status!.activeVersion, 'v1');
  assert.equal(w.condition('Ready').status, 'True');
  assert.equal(w.condition('Degraded').status, 'False');
  const steady = w.step();
  assert.deepEqual([steady.apply, steady.delete], [[], []], 'steady state: nothing to do');
});

test("with the operator's parts service: a placement waits for its parts, each stage fetches exactly its own (sha256 checked); a bad model fails the rollout", () => {
  const w = new World(three());
  const refs = new Map<string, { sha256: string; bytes: number }>();
  const failed = new Map<string, { message: string; permanent: boolean }>();
  w.parts = { url: 'http://kerf-operator.edge.svc:8080', refs, failed };
  let r = w.step();
  assert.equal(w.pipeline.status!.pending, null, 'nothing comes up before its parts are built');
  assert.equal(r.apply.filter((o) => o.kind === 'Deployment').length, 0);
  assert.equal(w.condition('Placed').reason, 'BuildingParts');
  assert.ok(r.parts.length >= 2, `the shell is asked for every stage's part (${r.parts.length})`);
  assert.ok(r.requeueAfterSeconds !== null && r.requeueAfterSeconds <= 2);
  r.parts.forEach((x, i) => refs.set(partKey(x), { sha256: String(i).repeat(64), bytes: 1000 + i }));
  r = w.step();
  const pend = w.pipeline.status!.pending!;
  assert.ok(pend, 'with its parts built the placement comes up');
  assert.deepEqual(r.parts, []);
  for (const s of pend.stages) {
    assert.equal(s.part!.sha256, String(s.index).repeat(64), 'status records each stage\'s part');
    const d = w.find('Deployment', `tiny-${pend.id}-s${s.index}`) as unknown as Dep;
    const init = d.spec.template.spec.initContainers[0]!.command;
    assert.equal(init[init.indexOf('--uri') + 1], `http://kerf-operator.edge.svc:8080/v1/parts/${s.part!.sha256}`);
    assert.equal(init[init.indexOf('--sha256') + 1], s.part!.sha256, 'the part\'s own sha256 is checked');
    assert.equal(init[init.indexOf('--bearer-env') + 1], 'KERF_TOKEN');
    assert.ok(!init.includes('--cuts'), 'nothing to cut in the pod');
  }
  // the gateway still fetches the whole model (it serves the model's metadata)
  const gw = w.find('Deployment', `tiny-${modelId(pend.model)}-gw`) as unknown as Dep;
  assert.ok(gw.spec.template.spec.initContainers[0]!.command.includes('https://models.example/tiny.onnx'));
  w.ready(pend.id);
  w.step();
  assert.equal(w.pipeline.status!.active!.id, pend.id);
  // a new version whose model does not match its sha256: no part, the rollout fails, v1 serves
  w.setSpec(spec({ model: { ...spec().model, sha256: SHA_B, version: 'v2' } }));
  r = w.step();
  assert.ok(r.parts.length >= 1);
  for (const x of r.parts) failed.set(partKey(x), { message: 'https://models.example/tiny.onnx: sha256 is ccc…, expected bbb…', permanent: true });
  r = w.step();
  assert.equal(w.pipeline.status!.pending, null);
  assert.equal(w.pipeline.status!.rollout!.phase, 'Failed');
  assert.match(w.pipeline.status!.rollout!.message, /v1 keeps serving; the parts of placement \w+ could not be built: .*sha256/);
  assert.equal(w.condition('Ready').status, 'True');
  assert.equal(w.pipeline.status!.active!.id, pend.id);
  // not retried until the spec changes
  assert.deepEqual(w.step().parts, []);
});

test('a node added: re-placed onto it only for the configured gain', () => {
  // two nodes carry the model; a third, fast node is worth a new placement; a slow one is not
  const w = new World([node('n1'), node('n2')]);
  const first = upAndRunning(w);
  w.nodes.push(node('slow', { cpu: '100m' }));
  w.advance(10);
  w.step();
  assert.equal(w.pipeline.status!.pending, null, 'a slow node buys too little to move');
  w.nodes.push(node('fast', { cpu: '4' }));
  w.setSpec(spec({ stageCpu: 4 }));
  w.advance(10);
  w.step();
  const pend = w.pipeline.status!.pending!;
  assert.ok(pend, 'a better placement is brought up');
  assert.notEqual(pend.id, first.id);
  assert.ok(pend.predictedThroughput >= first.predictedThroughput * 1.2);
  assert.equal(w.condition('RolloutInProgress').status, 'True');
  assert.equal(w.condition('RolloutInProgress').reason, 'Replan');
  assert.equal(selector(w, `tiny-${modelId(first.model)}-first`)['kerf.dev/placement'], first.id, 'the old placement serves until the new one is ready');
});

for (const [how, change] of [
  ['NotReady', (n: K8sObject) => { (n.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'False' }]; }],
  ['Unreachable', (n: K8sObject) => { (n.spec as Record<string, unknown>).taints = [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }]; }],
] as const) {
  test(`a node lost (${how}): re-placed at once on the others, switched when ready, the old placement drained then removed`, () => {
    const w = new World(three());
    const first = upAndRunning(w);
    const victim = first.stages[0]!.node;
    change(w.nodes.find((n) => n.metadata.name === victim)!);
    w.advance(5);
    w.step();
    const st = w.pipeline.status!;
    assert.equal(w.condition('Degraded').status, 'True');
    assert.equal(w.condition('Degraded').reason, 'NodeLost');
    assert.match(w.condition('Degraded').message, new RegExp(`node ${victim} is ${how}`));
    assert.equal(w.condition('RolloutInProgress').reason, 'Failover');
    assert.equal(st.lastFailover!.node, victim);
    assert.equal(st.lastFailover!.detectedAt, w.now);
    const pend = st.pending!;
    assert.ok(pend && pend.reason === 'failover');
    assert.ok(!pend.stages.some((s) => s.node === victim), 'nothing placed on the lost node');
    for (const d of w.deployments(pend.id).filter((d) => d.metadata.labels!['kerf.dev/component'] !== 'gateway' && d.metadata.name.includes('-s'))) {
      assert.notEqual(pinnedTo(d), victim);
    }
    assert.deepEqual(w.last!.actions, [], 'no gateway call before the new chain is ready');
    w.advance(20);
    w.ready(pend.id);
    const sw = w.step();
    const after = w.pipeline.status!;
    const vid = modelId(first.model);
    // the gateway stays and moves onto the new chain, replaying what was in flight
    assert.deepEqual(sw.actions, [{
      kind: 'retarget', service: { name: `tiny-${vid}-gw`, namespace: 'edge', port: 8000 }, tokenSecret: 'tiny-token',
      body: { cuts: [], next: `tiny-${pend.id}-s0.edge.svc:9000`, local: false, reason: `node ${victim} ${how}`, lost: [victim], detectMs: 0, replanMs: 0, deployMs: 20_000 },
    }]);
    assert.equal(selector(w, `tiny-${vid}-first`)['kerf.dev/placement'], pend.id, 'a restarted gateway finds the new chain too');
    assert.ok(w.find('Deployment', `tiny-${vid}-gw`), 'the same gateway');
    assert.equal(after.active!.id, pend.id);
    assert.equal(after.lastFailover!.switchedAt, w.now);
    assert.equal(after.lastFailover!.seconds, 20);
    assert.equal(w.condition('Degraded').status, 'False');
    assert.equal(w.condition('Ready').status, 'True');
    assert.equal(selector(w, 'tiny')['kerf.dev/model'], vid);
    assert.equal(after.previous!.id, first.id, 'the old placement drains');
    assert.ok(w.deployments(first.id).length > 0);
    w.advance(31);
    const r = w.step();
    assert.equal(w.deployments(first.id).length, 0, 'then it is removed');
    assert.ok(r.delete.some((d) => d.name === `tiny-${first.id}-s0`));
    assert.ok(w.find('Deployment', `tiny-${vid}-gw`), 'the gateway stays');
    // the node comes back: used again by the next re-plan (three stages beat two by more than the 20 % asked)
    w.nodes = three();
    w.advance(5);
    w.step();
    const back = w.pipeline.status!.pending!;
    assert.equal(back.reason, 'replan');
    assert.ok(back.stages.some((s) => s.node === victim));
  });
}

test('an agent that stops answering counts as a lost node', () => {
  const agentPod = (nodeName: string, ready: 'True' | 'False'): K8sObject => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `agent-${nodeName}`, namespace: 'edge', labels: { 'app.kubernetes.io/component': 'agent' } },
    spec: { nodeName, containers: [] }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready }] },
  });
  const w = new World(three());
  w.objects.push(agentPod('n1', 'True'), agentPod('n2', 'True'), agentPod('n3', 'True'));
  const first = upAndRunning(w);
  const victim = first.stages[first.stages.length - 1]!.node;
  (w.objects.find((o) => o.metadata.name === `agent-${victim}`)!.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'False' }];
  w.step();
  assert.equal(w.condition('Degraded').reason, 'AgentSilent');
  assert.ok(!w.pipeline.status!.pending!.stages.some((s) => s.node === victim));
});

test('memory too small: Placed=False with the reason, nothing applied', () => {
  const w = new World([node('n1', { memory: '64Mi' }), node('n2', { memory: '64Mi' })]);
  const r = w.step();
  assert.deepEqual(r.apply, []);
  assert.deepEqual(r.delete, []);
  assert.equal(w.condition('Placed').status, 'False');
  assert.equal(w.condition('Placed').reason, 'Unplaceable');
  assert.match(w.condition('Placed').message, /memory|MB/i);
  assert.equal(w.condition('Ready').status, 'False');
  assert.equal(w.condition('Ready').reason, 'Unplaceable');
  assert.ok(r.requeueAfterSeconds !== null, 'looked at again later (nodes may grow)');
});

test('a new model version rolls out beside the old one; the old serves until the new is ready, then drains', () => {
  const w = new World(three());
  const first = upAndRunning(w);
  w.setSpec(spec({ model: { ...spec().model, sha256: SHA_B, version: 'v2' } }));
  w.advance(3);
  w.step();
  const st = w.pipeline.status!;
  const pend = st.pending!;
  assert.equal(pend.reason, 'rollout');
  assert.equal(pend.model.version, 'v2');
  assert.equal(st.active!.id, first.id);
  assert.equal(st.activeVersion, 'v1');
  assert.equal(w.condition('RolloutInProgress').status, 'True');
  assert.equal(w.condition('RolloutInProgress').reason, 'Rolling');
  assert.equal(w.condition('Ready').status, 'True', 'v1 still serves');
  const init = (w.find('Deployment', `tiny-${pend.id}-s0`) as unknown as Dep).spec.template.spec.initContainers[0]!.command;
  assert.ok(init.includes(SHA_B));
  // part of it ready: progress shown
  const deps = w.deployments(pend.id);
  deps[0]!.status = { readyReplicas: 1 };
  w.step();
  assert.match(w.condition('RolloutInProgress').message, new RegExp(`1 of ${deps.length + 1} Deployments ready`), "its stages and its new gateway");
  w.ready(pend.id);
  w.step();
  assert.equal(w.pipeline.status!.activeVersion, 'v2');
  assert.equal(w.condition('RolloutInProgress').status, 'False');
  assert.equal(w.condition('RolloutInProgress').reason, 'RolloutComplete');
  assert.deepEqual(w.pipeline.status!.rollout!.from, 'v1');
  assert.deepEqual(w.last!.actions, [], 'a new version has its own gateway: the entry Service switches');
  assert.equal(selector(w, 'tiny')['kerf.dev/model'], modelId(pend.model));
  assert.ok(w.deployments(first.id).length > 0, 'v1 drains');
  assert.ok(w.find('Deployment', `tiny-${modelId(first.model)}-gw`));
  w.advance(40);
  w.step();
  assert.equal(w.deployments(first.id).length, 0, 'v1 removed after the drain');
  assert.equal(w.find('Deployment', `tiny-${modelId(first.model)}-gw`), undefined, 'its gateway too');
  assert.ok(w.deployments(pend.id).length > 0);
});

test('a failed rollout (bad sha256 in the init container) keeps the old version serving and says why; not retried', () => {
  const w = new World(three());
  const first = upAndRunning(w);
  w.setSpec(spec({ model: { ...spec().model, sha256: SHA_B, version: 'v2' } }));
  w.step();
  const pend = w.pipeline.status!.pending!;
  w.objects.push({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `tiny-${pend.id}-s0-abc`, namespace: 'edge', labels: { 'kerf.dev/pipeline': 'tiny', 'kerf.dev/placement': pend.id } },
    spec: { nodeName: 'n1', containers: [] },
    status: {
      phase: 'Pending',
      initContainerStatuses: [{ name: 'fetch-model', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, message: `kerf: https://models.example/tiny.onnx: sha256 is ${'c'.repeat(64)}, expected ${SHA_B}` } } }],
    },
  });
  const r = w.step();
  const st = w.pipeline.status!;
  assert.equal(st.pending, null);
  assert.equal(st.active!.id, first.id);
  assert.equal(st.activeVersion, 'v1');
  assert.equal(w.condition('RolloutInProgress').reason, 'RolloutFailed');
  assert.match(w.condition('RolloutInProgress').message, /v1 keeps serving.*sha256 is c+, expected b+/);
  assert.equal(w.condition('Ready').status, 'True');
  assert.ok(r.delete.some((d) => d.name === `tiny-${modelId(pend.model)}-gw`) && r.delete.some((d) => d.name === `tiny-${pend.id}-s0`), "the failed placement's objects are removed");
  assert.equal(selector(w, 'tiny')['kerf.dev/model'], modelId(first.model));
  w.objects = w.objects.filter((o) => o.kind !== 'Pod');
  w.step();
  assert.equal(w.pipeline.status!.pending, null, 'the same spec is not tried again');
  // a timeout fails a rollout too
  w.setSpec(spec({ model: { ...spec().model, sha256: SHA_B, version: 'v3' }, rollout: { timeoutSeconds: 60 } }));
  w.step();
  assert.ok(w.pipeline.status!.pending);
  w.advance(61);
  w.step();
  assert.equal(w.pipeline.status!.pending, null);
  assert.match(w.condition('RolloutInProgress').message, /ready after 61 s/);
});

test('objects edited or deleted by hand are reconciled back', () => {
  const w = new World(three());
  const first = upAndRunning(w);
  const name = `tiny-${first.id}-s1`;
  const d = w.find('Deployment', name) as unknown as Dep;
  d.spec.replicas = 3;
  d.spec.template.spec.containers[0]!.image = 'evil:latest';
  w.objects = w.objects.filter((o) => !(o.kind === 'Service' && o.metadata.name === `tiny-${first.id}-s0`));
  // what the API server adds (defaults, status, uid) is no edit
  const s = w.find('Service', 'tiny') as unknown as { spec: Record<string, unknown>; metadata: Record<string, unknown> };
  s.spec.clusterIP = '10.0.0.7';
  s.metadata.uid = 'u1';
  const r = w.step();
  assert.deepEqual(r.apply.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [`Deployment/${name}`, `Service/tiny-${first.id}-s0`].sort());
  const fixed = r.apply.find((o) => o.kind === 'Deployment') as unknown as Dep;
  assert.equal(fixed.spec.replicas, 1);
  assert.equal(fixed.spec.template.spec.containers[0]!.image, 'kerf:test');
  // a stray object with the pipeline's label and our manager is removed
  w.objects.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'tiny-stray', namespace: 'edge', labels: { 'kerf.dev/pipeline': 'tiny', 'app.kubernetes.io/managed-by': 'kerf-operator' } } });
  assert.deepEqual(w.step().delete, [{ apiVersion: 'v1', kind: 'Service', namespace: 'edge', name: 'tiny-stray' }]);
});

test('deletion: every owned object is deleted, nothing applied, no status', () => {
  const w = new World(three());
  upAndRunning(w);
  const owned = w.objects.filter((o) => o.metadata.labels?.['kerf.dev/pipeline'] === 'tiny').length;
  w.pipeline = { ...w.pipeline, metadata: { ...w.pipeline.metadata, deletionTimestamp: w.now } };
  const r = reconcile({ pipeline: w.pipeline, nodes: w.nodes, objects: w.objects, now: w.now, image: 'kerf:test', newToken: 't' });
  assert.deepEqual(r.apply, []);
  assert.equal(r.delete.length, owned);
  assert.equal(r.status, null);
});

test('a bad spec is named in Placed; a missing profile or entry node too', () => {
  const w = new World(three(), pipeline({ ...spec(), objectve: 'latency' } as never));
  assert.deepEqual(w.step().apply, []);
  assert.equal(w.condition('Placed').reason, 'InvalidSpec');
  assert.match(w.condition('Placed').message, /spec: unknown field 'objectve'/);
  const w2 = new World(three(), pipeline(spec({ model: { ...spec().model, sha256: 'xyz' } })));
  w2.step();
  assert.match(w2.condition('Placed').message, /spec\.model\.sha256: does not match/);
  const w3 = new World(three(), pipeline(), []);
  assert.deepEqual(w3.step().apply, []);
  assert.equal(w3.condition('Placed').reason, 'ProfileNotFound');
  const w4 = new World(three(), pipeline(spec({ entry: { node: 'phone' } })));
  w4.step();
  assert.equal(w4.condition('Placed').reason, 'EntryNodeNotFound');
});

test('node selector, measured links and the latency objective shape the placement', () => {
  const nodes = [node('n1', { labels: { kerf: 'yes' } }), node('n2', { labels: { kerf: 'yes' } }), node('n3')];
  const w = new World(nodes, pipeline(spec({ nodeSelector: { matchLabels: { kerf: 'yes' } } })));
  w.step();
  assert.ok(!w.pipeline.status!.pending!.stages.some((s) => s.node === 'n3'));
  // a slow measured link between n1 and n2: latency objective keeps the model on one node
  const links = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'links', namespace: 'edge' }, data: { 'links.json': JSON.stringify([{ from: 'n1', to: 'n2', bandwidthMbps: 1, rttMs: 50 }]) } };
  const w2 = new World([node('n1'), node('n2')], pipeline(spec({ objective: 'latency', network: { linksConfigMapRef: { name: 'links' } } })), [profileConfigMap(), links]);
  w2.step();
  assert.equal(w2.pipeline.status!.pending!.stages.length, 1);
  assert.deepEqual(w2.pipeline.status!.links!.find((l) => l.from === 'n1' && l.to === 'n2'), { from: 'n1', to: 'n2', bandwidthMbps: 1, rttMs: 50, source: 'override' });
  // memory asked for by other pods on a node is not offered again
  const hog = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hog', namespace: 'edge' }, spec: { nodeName: 'n1', containers: [{ name: 'c', resources: { requests: { memory: '1000Mi' } } }] }, status: { phase: 'Running' } };
  const w3 = new World([node('n1'), node('n2')], pipeline(), [profileConfigMap(), hog]);
  w3.step();
  assert.ok(!w3.pipeline.status!.pending!.stages.some((s) => s.node === 'n1'));
});

test('reconcileList takes what kubectl get -o json prints and finds orphans', () => {
  const orphan = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'gone-1234-s0', namespace: 'edge', labels: { 'app.kubernetes.io/managed-by': 'kerf-operator', 'kerf.dev/pipeline': 'gone' }, ownerReferences: [{ apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', name: 'gone', uid: 'uid-gone' }] } };
  const list = { apiVersion: 'v1', kind: 'List', items: [pipeline(), ...three(), profileConfigMap(), orphan] };
  const out = reconcileList(list, { now: '2026-01-01T00:00:00Z', image: 'kerf:test', newToken: 't' });
  assert.equal(out.pipelines.length, 1);
  assert.ok(out.pipelines[0]!.result.apply.length > 0);
  assert.deepEqual(out.orphans, [{ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'edge', name: 'gone-1234-s0' }]);
  assert.throws(() => reconcileList({ kind: 'Pod' }, { now: '2026-01-01T00:00:00Z', image: 'i', newToken: 't' }), /expected a Kubernetes List/);
});

test('contains: what the server adds is ignored, a changed or missing field is not', () => {
  assert.ok(contains({ a: 1, b: { c: [1, { d: 2, e: 3 }] }, extra: 1 }, { a: 1, b: { c: [1, { d: 2 }] } }));
  assert.ok(!contains({ a: 1, b: { c: [1] } }, { a: 1, b: { c: [1, 2] } }));
  assert.ok(!contains({ a: '1' }, { a: 1 }));
  void profile;
});

test('links measurement: which agents measure, when it is due, what the core places with', async () => {
  const { agentTargets, measureDue, linksConfigMap, lastMeasurement } = await import('../../src/k8s/links.js');
  const pod = (n: string, ready: string, ip?: string) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `a-${n}`, namespace: 'edge', labels: { 'app.kubernetes.io/component': 'agent' } },
    spec: { nodeName: n }, status: { ...(ip ? { podIP: ip } : {}), conditions: [{ type: 'Ready', status: ready }] },
  });
  const targets = agentTargets([pod('n2', 'True', '10.0.0.2'), pod('n1', 'True', 'fd00::1'), pod('n3', 'False', '10.0.0.3'), pod('n4', 'True')], 7070);
  assert.deepEqual(targets, [{ node: 'n1', address: '[fd00::1]:7070' }, { node: 'n2', address: '10.0.0.2:7070' }], 'ready agents with an IP, one per node');
  const now = '2026-01-01T00:10:00.000Z';
  assert.equal(measureDue(null, targets.slice(0, 1), now, 600), null, 'one node: nothing to measure');
  assert.equal(measureDue(null, targets, now, 600), 'no measurement yet');
  const doc = { schema: 'kerf.links/v1' as const, measuredAt: '2026-01-01T00:05:00.000Z', nodes: ['n1', 'n2'], seconds: 2, links: [{ from: 'n1', to: 'n2', bandwidthMbps: 80, rttMs: 3 }, { from: 'n2', to: 'n1', bandwidthMbps: 20, rttMs: 3 }] };
  const cm = linksConfigMap('edge', doc);
  assert.deepEqual(lastMeasurement([cm], 'edge'), doc);
  assert.equal(measureDue(doc, targets, now, 600), null, 'fresh');
  assert.match(measureDue(doc, targets, now, 200)!, /older than 200 s/);
  assert.match(measureDue(doc, [...targets, { node: 'n5', address: 'x:1' }], now, 600)!, /agents on n5 not measured yet/);
  // the core places with the measurement, per direction; status says where each link comes from
  const w = new World([node('n1'), node('n2')], pipeline(spec({ network: { bandwidthMbps: 500 } })), [profileConfigMap(), cm]);
  w.step();
  const links = w.pipeline.status!.links!;
  assert.deepEqual(links.find((l) => l.from === 'n1' && l.to === 'n2'), { from: 'n1', to: 'n2', bandwidthMbps: 80, rttMs: 3, source: 'measured' });
  assert.deepEqual(links.find((l) => l.from === 'n2' && l.to === 'n1'), { from: 'n2', to: 'n1', bandwidthMbps: 20, rttMs: 3, source: 'measured' });
  // a node not measured yet is at the spec's default
  const w2 = new World([node('n1'), node('n2'), node('n3')], pipeline(spec({ network: { bandwidthMbps: 500 } })), [profileConfigMap(), cm]);
  w2.step();
  assert.equal(w2.pipeline.status!.links!.find((l) => l.from === 'n1' && l.to === 'n3')!.source, 'default');
  assert.equal(w2.pipeline.status!.links!.find((l) => l.from === 'n1' && l.to === 'n3')!.bandwidthMbps, 500);
});

test("spec.defaults.codec and .switching reach the gateway's and the stages' commands; a bad codec is named", () => {
  const w = new World(three(), pipeline(spec({ defaults: { codec: 'fp16+zstd/lz4', switching: 'standby' } })));
  w.step();
  const pend = w.pipeline.status!.pending!;
  assert.ok(pend.stages.length >= 2);
  const args = (name: string) => (w.find('Deployment', name) as unknown as Dep).spec.template.spec.containers[0]!.args;
  const gw = args(`tiny-${modelId(pend.model)}-gw`);
  assert.equal(gw[gw.indexOf('--next-codec') + 1], 'fp16+zstd/lz4');
  assert.equal(gw[gw.indexOf('--switch-strategy') + 1], 'standby');
  for (const s of pend.stages) {
    const a = args(`tiny-${pend.id}-s${s.index}`);
    if (s.index < pend.stages.length - 1) assert.equal(a[a.indexOf('--next-codec') + 1], 'fp16+zstd/lz4', `stage ${s.index} sends with the codec`);
    else assert.ok(!a.includes('--next-codec'), 'the last stage sends to no one');
    assert.ok(!a.includes('--switch-strategy'));
  }
  const bad = new World(three(), pipeline(spec({ defaults: { codec: 'gzip' } })));
  const r = bad.step();
  assert.equal(bad.condition('Placed').reason, 'InvalidSpec');
  assert.match(bad.condition('Placed').message, /spec\.defaults\.codec/);
  assert.equal(r.apply.length, 0);
  const bad2 = new World(three(), pipeline(spec({ defaults: { switching: 'instant' as never } })));
  bad2.step();
  assert.match(bad2.condition('Placed').message, /spec\.defaults\.switching/);
});

test('rollout memory room: the old pods are counted; when two versions do not fit side by side, the new one is staged stage by stage', () => {
  const big = () => [profileConfigMap('edge', profile(8, 0.04, 40))];
  const nodes = () => [node('n1', { memory: '400Mi' }), node('n2', { memory: '400Mi' }), node('n3', { memory: '400Mi' })];
  const w = new World(nodes(), pipeline(), big());
  const first = upAndRunning(w);
  assert.ok(first.stages.length >= 2, `split over the nodes (${first.stages.length} stages)`);
  assert.ok(!first.staged);
  // the old stages' pods, as the kubelet runs them
  const podOf = (st: PlacementState, s: PlacementState['stages'][number]): K8sObject => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `tiny-${st.id}-s${s.index}-abc`, namespace: 'edge', labels: { 'kerf.dev/pipeline': 'tiny', 'kerf.dev/placement': st.id, 'kerf.dev/stage': String(s.index), 'app.kubernetes.io/component': 'stage' } },
    spec: { nodeName: s.node, containers: [{ name: 'worker', resources: { requests: { memory: `${s.memoryMiB}Mi` } } }] }, status: { phase: 'Running' },
  });
  w.objects.push(...first.stages.map((s) => podOf(first, s)));
  w.setSpec(spec({ model: { ...spec().model, sha256: SHA_B, version: 'v2' } }));
  let r = w.step();
  const pend = w.pipeline.status!.pending!;
  assert.ok(pend, 'v2 is placed');
  assert.equal(pend.staged, true, 'it does not fit beside v1: staged');
  // per node: v2's stages are created at once where they fit beside v1's; elsewhere v1's stop first and v2's wait
  const mib = (st: PlacementState, n: string) => st.stages.filter((s) => s.node === n).reduce((a, s) => a + s.memoryMiB, 0);
  let waited = 0;
  for (const s of pend.stages) {
    const fits = mib(first, s.node) + mib(pend, s.node) <= 400;
    const created = !!w.find('Deployment', `tiny-${pend.id}-s${s.index}`);
    assert.equal(created, fits, `v2 s${s.index} on ${s.node}: ${fits ? 'room beside v1' : 'waits for room'}`);
    for (const o of first.stages.filter((x) => x.node === s.node)) {
      assert.equal(r.delete.some((d) => d.kind === 'Deployment' && d.name === `tiny-${first.id}-s${o.index}`), !fits, `v1 s${o.index} on ${s.node} ${fits ? 'stays' : 'stops to make room'}`);
    }
    if (!fits) waited++;
  }
  assert.ok(waited > 0, 'some stage had to wait');
  assert.ok(r.events.some((e) => e.reason === 'MakingRoom' && /stage by stage/.test(e.message)));
  assert.match(w.condition('RolloutInProgress').message, /staged .*waits for tiny-/);
  // the old pods go; the new stages come up on the freed nodes, then v2 serves
  w.objects = w.objects.filter((o) => o.kind !== 'Pod');
  r = w.step();
  for (const s of pend.stages) assert.ok(w.find('Deployment', `tiny-${pend.id}-s${s.index}`), `v2 s${s.index} created`);
  w.ready(pend.id);
  w.step();
  assert.equal(w.pipeline.status!.activeVersion, 'v2');
  // with room for both (bigger nodes), the same rollout is side by side
  const w2 = new World([node('n1', { memory: '2Gi' }), node('n2', { memory: '2Gi' }), node('n3', { memory: '2Gi' })], pipeline(), big());
  const f2 = upAndRunning(w2);
  w2.objects.push(...f2.stages.map((s) => podOf(f2, s)));
  w2.setSpec(spec({ model: { ...spec().model, sha256: SHA_B, version: 'v2' } }));
  const r2 = w2.step();
  assert.ok(!w2.pipeline.status!.pending!.staged);
  assert.ok(!r2.delete.some((d) => d.kind === 'Deployment'), 'v1 keeps all its stages');
});
