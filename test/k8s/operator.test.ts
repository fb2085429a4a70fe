/**
 * The operator's I/O against the fake API server for tests (test/k8s/fake-apiserver.ts): list
 * and watch, server-side apply under one field manager, the status subresource, relisting on
 * 410 Gone, hand edits taken back, node loss, deletion, and leader election between two replicas.
 * And, only when KERF_TEST_KUBECONFIG names a real cluster's kubeconfig, a smoke test there.
 */
import { test } from 'node:test';
import * as http from 'node:http';
import assert from 'node:assert/strict';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { Operator } from '../../src/k8s/operator.js';
import { kerfPipelineCrd } from '../../src/k8s/crd.js';
import { FakeApiServer } from './fake-apiserver.js';
import { problems } from './validate.js';
import { CLUSTER_TOKEN, startAgent, type RunningAgent } from '../cluster/helpers.js';
import { kubeconfig, node, pipeline, profileConfigMap, until } from './fixtures.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function seed(fake: FakeApiServer): void {
  for (const n of [node('n1'), node('n2'), node('n3')]) fake.put(n as never);
  fake.put(profileConfigMap() as never);
  fake.put(pipeline() as never);
}

/** What a Deployment controller and kubelet would do: every kerf Deployment of `id` ready. */
function markReady(fake: FakeApiServer, id: string): void {
  for (const d of fake.list('Deployment')) {
    if (d.metadata.labels?.['kerf.dev/placement'] === id || d.metadata.labels?.['app.kubernetes.io/component'] === 'gateway') fake.put({ ...d, status: { readyReplicas: 1, availableReplicas: 1, observedGeneration: d.metadata.generation } });
  }
}

test('operator against the fake API server: apply, status, ready, hand edit, 410 Gone, node loss, deletion', async () => {
  const fake = await FakeApiServer.start();
  const logs: Record<string, unknown>[] = [];
  let op: Operator | null = null;
  // stands in for the gateway's control API: records the failover calls the operator makes
  const calls: { path: string; auth: string; body: Any; host: string }[] = [];
  const gw = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => { b += c.toString(); });
    req.on('end', () => { calls.push({ path: req.url!, auth: String(req.headers.authorization), body: JSON.parse(b) as Any, host: String(req.headers['x-service']) }); res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ failover: { replayed: 3 } })); });
  });
  await new Promise<void>((r) => gw.listen(0, '127.0.0.1', () => r()));
  const gwUrl = `http://127.0.0.1:${(gw.address() as { port: number }).port}`;
  const services: string[] = [];
  try {
    seed(fake);
    op = await Operator.start({
      kc: kubeconfig(fake.url, 'op-a'), namespace: 'edge', image: 'kerf:test', identity: 'a', leaseDurationS: 3, resyncS: 60, log: (e) => logs.push(e),
      gatewayUrl: (svc) => { services.push(`${svc.name}.${svc.namespace}:${svc.port}`); return gwUrl; },
    });
    assert.equal(op.leader, true);
    const pend = await until('a pending placement in status', () => (fake.get('KerfPipeline', 'tiny', 'edge')?.status as Any | undefined)?.pending as Any | undefined);
    const deps = await until('the Deployments', () => { const d = fake.list('Deployment'); return d.length === pend.stages.length + 1 && d; });
    // every object went in by server-side apply under one field manager, forced
    const applies = fake.log.filter((r) => r.method === 'PATCH' && !r.path.endsWith('/status'));
    assert.ok(applies.length >= deps.length * 2);
    for (const a of applies) {
      assert.equal(a.contentType, 'application/apply-patch+yaml');
      assert.equal(a.query.fieldManager, 'kerf-operator');
      assert.equal(a.query.force, 'true');
    }
    for (const d of deps) assert.deepEqual((d.metadata.managedFields as Any[])[0]!.manager, 'kerf-operator');
    const statusWrites = fake.log.filter((r) => r.path === '/apis/kerf.dev/v1alpha1/namespaces/edge/kerfpipelines/tiny/status');
    assert.ok(statusWrites.length >= 1 && statusWrites.every((r) => r.method === 'PATCH' && r.contentType === 'application/merge-patch+json'));
    // watches started from the lists' resourceVersion
    const watch = fake.log.find((r) => r.query.watch === 'true' && r.path === '/apis/apps/v1/namespaces/edge/deployments')!;
    assert.ok(Number(watch.query.resourceVersion) > 0);
    assert.equal(watch.query.labelSelector, 'app.kubernetes.io/managed-by=kerf-operator');

    markReady(fake, pend.id);
    const active = await until('the switch to the ready placement', () => { const s = fake.get('KerfPipeline', 'tiny', 'edge')?.status as Any; return s?.active?.id === pend.id && s; });
    assert.equal(active.conditions.find((c: Any) => c.type === 'Ready').status, 'True');
    const first = fake.list('Service').find((x) => x.metadata.labels?.['app.kubernetes.io/component'] === 'first-hop')!;
    assert.equal((first.spec as Any).selector['kerf.dev/placement'], pend.id);
    assert.ok((fake.get('Service', 'tiny', 'edge')!.spec as Any).selector['kerf.dev/model']);

    // a hand edit is taken back
    const s1 = fake.get('Deployment', `tiny-${pend.id}-s1`, 'edge')!;
    fake.put({ ...s1, spec: { ...(s1.spec as Any), replicas: 5 } });
    await until('the edit reconciled back', () => (fake.get('Deployment', `tiny-${pend.id}-s1`, 'edge')!.spec as Any).replicas === 1);

    // history compacted and watches cut: the informers get 410 Gone, list again and carry on
    const listsBefore = fake.log.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes' && r.query.watch === undefined).length;
    fake.compact();
    fake.dropWatches();
    await until('a relist of nodes after 410', () => fake.log.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes' && r.query.watch === undefined).length > listsBefore);
    // the node of stage 0 goes NotReady: re-placed at once, off that node
    const victim = (active.active.stages as Any[])[0]!.node as string;
    const vn = fake.get('Node', victim)!;
    await new Promise((r) => setTimeout(r, 200)); // let the new watches open
    const t0 = performance.now();
    fake.put({ ...vn, status: { ...(vn.status as Any), conditions: [{ type: 'Ready', status: 'False' }] } });
    const failover = await until('a failover placement', () => { const s = fake.get('KerfPipeline', 'tiny', 'edge')?.status as Any; return s?.pending?.reason === 'failover' && s; });
    await until('its Deployments applied', () => fake.list('Deployment').filter((d) => d.metadata.labels?.['kerf.dev/placement'] === failover.pending.id).length === failover.pending.stages.length);
    process.stdout.write(`node NotReady → failover Deployments applied and status written: ${(performance.now() - t0).toFixed(0)} ms (fake API server on loopback)\n`);
    assert.equal(failover.lastFailover.node, victim);
    assert.equal(failover.conditions.find((c: Any) => c.type === 'Degraded').status, 'True');
    assert.ok(!(failover.pending.stages as Any[]).some((s) => s.node === victim));
    // what happened is in Kubernetes Events about the pipeline, valid by the official schema
    const events = await until('the NodeLost Event', () => { const ev = fake.list('Event'); return ev.some((e) => e.reason === 'NodeLost') && ev; });
    assert.deepEqual(events.flatMap((e) => problems(e as never)), []);
    for (const e of events) {
      assert.equal((e.regarding as Any).name, 'tiny');
      assert.equal((e.regarding as Any).kind, 'KerfPipeline');
      assert.equal(e.reportingController, 'kerf.dev/operator');
    }
    const lostEv = events.find((e) => e.reason === 'NodeLost')!;
    assert.equal(lostEv.type, 'Warning');
    assert.equal(lostEv.action, 'Failover');
    assert.match(String(lostEv.note), new RegExp(`node ${victim} is NotReady`));
    assert.ok(events.some((e) => e.reason === 'Placing' && /^initial: placement/.test(String(e.note))));
    assert.ok(events.some((e) => e.reason === 'Switched'));
    markReady(fake, failover.pending.id);
    await until('the switch off the lost node', () => (fake.get('KerfPipeline', 'tiny', 'edge')?.status as Any)?.lastFailover?.switchedAt);
    // the gateway was moved onto the new chain through its failover API, with the pipeline's token
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.path, '/v1/partition/failover');
    assert.equal(calls[0]!.auth, `Bearer ${(fake.get('Secret', 'tiny-token', 'edge') as Any).stringData.token}`);
    assert.equal(calls[0]!.body.next, `tiny-${failover.pending.id}-s0.edge.svc:9000`);
    assert.deepEqual(calls[0]!.body.lost, [victim]);
    assert.match(services[0]!, /^tiny-[0-9a-f]{8}-gw\.edge:8000$/);
    assert.ok(logs.some((e) => e.event === 'gateway-retarget' && e.replayed === 3));

    // the KerfPipeline deleted: the operator removes what it made (no garbage collector here)
    fake.remove('KerfPipeline', 'tiny', 'edge');
    await until('every owned object deleted', () => fake.list('Deployment').length === 0 && fake.list('Service').length === 0 && fake.list('Secret').length === 0);
    assert.ok(fake.log.some((r) => r.method === 'DELETE'));
  } finally {
    await op?.close();
    await fake.close();
    await new Promise<void>((r) => { gw.closeAllConnections(); gw.close(() => r()); });
  }
});

test('leader election: of two replicas one reconciles; when it stops, the other takes over', async () => {
  const fake = await FakeApiServer.start();
  let a: Operator | null = null;
  let b: Operator | null = null;
  try {
    for (const n of [node('n1'), node('n2')]) fake.put(n as never);
    fake.put(profileConfigMap() as never);
    a = await Operator.start({ kc: kubeconfig(fake.url, 'op-a'), namespace: 'edge', image: 'kerf:test', identity: 'a', leaseDurationS: 3, log: () => undefined });
    b = await Operator.start({ kc: kubeconfig(fake.url, 'op-b'), namespace: 'edge', image: 'kerf:test', identity: 'b', leaseDurationS: 3, log: () => undefined });
    assert.equal(a.leader, true);
    assert.equal(b.leader, false);
    assert.equal((fake.get('Lease', 'kerf-operator', 'edge')!.spec as Any).holderIdentity, 'a');
    fake.put(pipeline() as never);
    await until('a applies', () => fake.list('Deployment').length > 0);
    await new Promise((r) => setTimeout(r, 300));
    const writesBy = (u: string) => fake.log.filter((r) => r.user === u && (r.method === 'PATCH' || r.method === 'DELETE') && !r.path.includes('/leases/')).length;
    assert.equal(writesBy('op-b'), 0, 'the follower writes nothing');
    await a.close();
    a = null;
    assert.equal((fake.get('Lease', 'kerf-operator', 'edge')!.spec as Any).holderIdentity, '', 'released on close');
    await until('b leads', () => b!.leader, 5000);
    // b reconciles: a hand-deleted Service comes back through b
    const svc = fake.list('Service').find((s) => s.metadata.name !== 'tiny')!;
    fake.remove('Service', svc.metadata.name, 'edge');
    await until('b re-creates the Service', () => fake.get('Service', svc.metadata.name, 'edge'));
    assert.ok(writesBy('op-b') > 0);
  } finally {
    await a?.close();
    await b?.close();
    await fake.close();
  }
});

test('the agents measure the links between their nodes (at start, then periodically); the operator places with them; a ConfigMap overrides', async () => {
  const fake = await FakeApiServer.start();
  const agents: RunningAgent[] = [];
  let op: Operator | null = null;
  try {
    const names = ['n1', 'n2', 'n3'];
    for (const n of names) agents.push(await startAgent());
    for (const n of names) {
      fake.put(node(n) as never);
      fake.put({
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `kerf-agent-${n}`, namespace: 'edge', labels: { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/component': 'agent' } },
        spec: { nodeName: n, containers: [] }, status: { phase: 'Running', podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
      });
    }
    fake.put(profileConfigMap() as never);
    fake.put(pipeline() as never);
    const logs: Any[] = [];
    op = await Operator.start({
      kc: kubeconfig(fake.url, 'op'), namespace: 'edge', image: 'kerf:test', identity: 'a', leaseDurationS: 3, resyncS: 1, log: (e) => logs.push(e),
      agentToken: CLUSTER_TOKEN, measure: { everyS: 3, seconds: 0.2 }, agentAddress: (n) => agents[names.indexOf(n)]!.agent,
    });
    const cm = await until('the measured links', () => fake.get('ConfigMap', 'kerf-measured-links', 'edge'), 60_000);
    const doc = JSON.parse((cm.data as Any)['links.json'] as string) as Any;
    assert.equal(doc.schema, 'kerf.links/v1');
    assert.deepEqual(doc.nodes, names);
    assert.equal(doc.links.length, 6, 'every pair both ways');
    for (const l of doc.links as Any[]) assert.ok(l.bandwidthMbps > 0 && l.rttMs >= 0, JSON.stringify(l));
    // the pipeline is placed with them: its status shows each link as measured, with the measured figures
    const measured = await until('status links from the measurement', () => {
      const links = (fake.get('KerfPipeline', 'tiny', 'edge')?.status as Any | undefined)?.links as Any[] | undefined;
      const now = JSON.parse((fake.get('ConfigMap', 'kerf-measured-links', 'edge')!.data as Any)['links.json'] as string) as Any;
      return !!links?.length && links.every((l) => l.source === 'measured' && now.links.some((m: Any) => m.from === l.from && m.to === l.to && m.bandwidthMbps === l.bandwidthMbps)) ? links : null;
    }, 30_000);
    assert.equal(measured.length, 6);
    // measured again after measure.everyS
    const at = doc.measuredAt as string;
    await until('a second measurement', () => {
      const d = JSON.parse((fake.get('ConfigMap', 'kerf-measured-links', 'edge')!.data as Any)['links.json'] as string) as Any;
      return d.measuredAt !== at;
    }, 30_000);
    // a ConfigMap named by the spec overrides the measurement where it says
    fake.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'slow', namespace: 'edge' }, data: { 'links.json': JSON.stringify([{ from: 'n1', to: 'n2', bandwidthMbps: 5, rttMs: 9 }]) } });
    const kp = fake.get('KerfPipeline', 'tiny', 'edge')!;
    fake.put({ ...kp, spec: { ...(kp.spec as Any), network: { linksConfigMapRef: { name: 'slow' } } } });
    const over = await until('the override in status', () => {
      const links = (fake.get('KerfPipeline', 'tiny', 'edge')?.status as Any | undefined)?.links as Any[] | undefined;
      return links?.find((l) => l.from === 'n1' && l.to === 'n2' && l.source === 'override') && links;
    }, 30_000);
    assert.deepEqual(over.find((l: Any) => l.from === 'n1' && l.to === 'n2'), { from: 'n1', to: 'n2', bandwidthMbps: 5, rttMs: 9, source: 'override' });
    assert.equal(over.find((l: Any) => l.from === 'n2' && l.to === 'n1')!.source, 'measured', 'the other direction stays measured');
    assert.ok(over.some((l: Any) => l.from === 'n2' && l.to === 'n3' && l.source === 'measured'));
    assert.equal(logs.filter((e) => e.event === 'measure-error').length, 0, JSON.stringify(logs.filter((e) => e.event === 'measure-error')));
  } finally {
    await op?.close();
    for (const a of agents) a.proc.kill('SIGTERM');
    await fake.close();
  }
});

test('a repeated event counts into the first Event\'s series, not a new Event each time', async () => {
  const fake = await FakeApiServer.start();
  let op: Operator | null = null;
  try {
    for (const n of [node('n1'), node('n2')]) fake.put(n as never);
    fake.put(pipeline() as never); // its profile ConfigMap is missing: ProfileNotFound on every reconcile
    op = await Operator.start({ kc: kubeconfig(fake.url, 'op'), namespace: 'edge', image: 'kerf:test', identity: 'a', leaseDurationS: 3, resyncS: 1, log: () => undefined });
    const ev = await until('a series of ProfileNotFound', () => {
      const e = fake.list('Event').filter((x) => x.reason === 'ProfileNotFound');
      return e.length === 1 && ((e[0]!.series as Any | undefined)?.count ?? 0) >= 3 && e[0]!;
    }, 30_000);
    assert.equal(ev.type, 'Warning');
    assert.match(String((ev.series as Any).lastObservedTime), /^\d{4}-\d\d-\d\dT.*\.\d{6}Z$/);
    assert.deepEqual(problems(ev as never), []);
    assert.equal(fake.list('Event').filter((x) => x.reason === 'ProfileNotFound').length, 1, 'one Event');
  } finally {
    await op?.close();
    await fake.close();
  }
});

test('against a real cluster (KERF_TEST_KUBECONFIG)', async (t) => {
  const file = process.env.KERF_TEST_KUBECONFIG;
  if (!file) {
    t.skip('KERF_TEST_KUBECONFIG is not set: no real cluster here (this machine has no API server)');
    process.stdout.write('SKIP: real-cluster test: KERF_TEST_KUBECONFIG is not set\n');
    return;
  }
  // Needs rights to apply a CRD and to work in namespace KERF_TEST_NAMESPACE (default default): a kind or k3d cluster's admin.
  const ns = process.env.KERF_TEST_NAMESPACE ?? 'default';
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  const api = KubernetesObjectApi.makeApiClient(kc);
  const apply = (o: object) => api.patch(o as never, undefined, undefined, 'kerf-test', true, PatchStrategy.ServerSideApply);
  await apply(kerfPipelineCrd());
  await new Promise((r) => setTimeout(r, 3000)); // the CRD becomes established
  const name = `kerf-test-${process.pid}`;
  const cm = { ...profileConfigMap(ns), metadata: { name: `${name}-profile`, namespace: ns } };
  const kp = pipeline({ model: { uri: 'https://models.invalid/tiny.onnx', sha256: 'a'.repeat(64), version: 'v1', profile: { configMapRef: { name: `${name}-profile` } } } });
  await apply(cm);
  await apply({ ...kp, metadata: { name, namespace: ns } });
  const op = await Operator.start({ kc, namespace: ns, image: process.env.KERF_TEST_IMAGE ?? 'kerf:dev', identity: `test-${process.pid}`, leaseName: name, leaseDurationS: 10, log: () => undefined });
  try {
    assert.equal(op.leader, true);
    const placed = await until('a Placed condition in the real status', async () => {
      const got = await api.read({ apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', metadata: { name, namespace: ns } }) as unknown as { status?: { conditions?: { type: string; status: string; reason: string }[] } };
      return got.status?.conditions?.find((c) => c.type === 'Placed');
    }, 60_000);
    assert.ok(placed.status === 'True' || placed.status === 'False');
    if (placed.status === 'True') {
      const deps = await api.list('apps/v1', 'Deployment', ns, undefined, undefined, undefined, undefined, `kerf.dev/pipeline=${name}`);
      assert.ok(deps.items.length > 0 && deps.items.every((d) => d.metadata?.ownerReferences?.[0]?.name === name));
    }
  } finally {
    await op.close();
    await api.delete({ apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', metadata: { name, namespace: ns } }).catch(() => undefined);
    await api.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-profile`, namespace: ns } }).catch(() => undefined);
  }
});
