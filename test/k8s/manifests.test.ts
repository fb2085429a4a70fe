/** Every object kerf writes for Kubernetes, validated offline (official schemas + kerf's own checks). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installObjects, renderObjects, serviceMonitor } from '../../src/k8s/manifests.js';
import { selectorMatches } from '../../src/k8s/reconcile.js';
import { checkSpec, kerfPipelineCrd } from '../../src/k8s/crd.js';
import type { K8sObject } from '../../src/k8s/types.js';
import { place, placeModelFromProfiles, validateCluster } from '../../src/plan/place/index.js';
import { checkProfile } from '../../src/profile/schema.js';
import { problems } from './validate.js';
import { node, profile, spec, World, SHA_A } from './fixtures.js';

function assertClean(objs: K8sObject[]): void {
  const all = objs.flatMap(problems);
  assert.deepEqual(all, []);
}

test("the operator's objects pass the official schemas and kerf's checks (every phase: pending, active, rollout)", () => {
  const w = new World([node('n1'), node('n2'), node('n3')], undefined);
  w.pipeline = { ...w.pipeline, spec: spec({ model: { ...spec().model, uri: 'pvc://models/tiny/v1.onnx', inputShapes: { x: [1, 3, 8, 8] } }, defaults: { queue: 16 } }) };
  const seen = new Map<string, K8sObject>();
  const collect = (): void => { for (const a of w.step().apply) seen.set(`${a.kind}/${a.metadata.name}`, a); };
  collect();
  w.ready(w.pipeline.status!.pending!.id);
  collect();
  w.setSpec({ ...w.pipeline.spec, model: { ...w.pipeline.spec.model, version: 'v2', sha256: 'b'.repeat(64) }, entry: { service: { type: 'NodePort', port: 8080 } } });
  collect();
  const kinds = new Set([...seen.values()].map((o) => o.kind));
  assert.deepEqual([...kinds].sort(), ['Deployment', 'Secret', 'Service']);
  assert.ok(seen.size >= 9);
  assertClean([...seen.values()]);
  // the PVC source is mounted read-only for the init container
  const d = [...seen.values()].find((o) => o.kind === 'Deployment')! as unknown as { spec: { template: { spec: { volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[]; initContainers: { command: string[] }[] } } } };
  assert.equal(d.spec.template.spec.volumes.find((v) => v.name === 'source')!.persistentVolumeClaim!.claimName, 'models');
  assert.ok(d.spec.template.spec.initContainers[0]!.command.includes('/kerf/source/tiny/v1.onnx'));
});

test('kerf k8s install: CRD, operator, ServiceAccount, RBAC (namespaced, read-only on Nodes, no wildcards), agents', () => {
  const objs = installObjects({ namespace: 'kerf-system', image: 'ghcr.io/x/kerf:0.1.0', agentToken: 'tok' });
  assert.deepEqual(objs.map((o) => o.kind), ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Service', 'Secret', 'DaemonSet']);
  assertClean(objs);
  const cr = objs.find((o) => o.kind === 'ClusterRole') as unknown as { rules: { resources: string[]; verbs: string[] }[] };
  assert.deepEqual(cr.rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
});

test('the checks catch what they are for', () => {
  const objs = installObjects({ namespace: 'k', image: 'i', agentToken: 't' });
  const dep = JSON.parse(JSON.stringify(objs.find((o) => o.kind === 'Deployment'))) as { spec: { template: { spec: { containers: Record<string, unknown>[]; securityContext: Record<string, unknown> } } } } & K8sObject;
  const c = dep.spec.template.spec.containers[0]!;
  c.readinessProb = c.readinessProbe;
  delete c.readinessProbe;
  delete (c.resources as { limits?: unknown }).limits;
  dep.spec.template.spec.securityContext.runAsNonRoot = false;
  const p = problems(dep);
  assert.ok(p.some((x) => /unknown field \.spec\.template\.spec\.containers\[0\]\.readinessProb$/.test(x)), p.join('\n'));
  assert.ok(p.some((x) => /has no readiness probe/.test(x)));
  assert.ok(p.some((x) => /no memory limit/.test(x)));
  assert.ok(p.some((x) => /not runAsNonRoot/.test(x)));
  const role = JSON.parse(JSON.stringify(objs.find((o) => o.kind === 'Role'))) as { rules: { verbs: string[] }[] } & K8sObject;
  role.rules[0]!.verbs = ['*'];
  assert.ok(problems(role).some((x) => /wildcard/.test(x)));
  const bad = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 'x' }] } } as K8sObject;
  assert.ok(problems(bad).some((x) => /official schema/.test(x)));
});

test("a ServiceMonitor when asked: valid for the Prometheus Operator's schema, scraping each stage, gateway and the operator once", () => {
  assert.ok(!installObjects({ namespace: 'k', image: 'i', agentToken: 't' }).some((o) => o.kind === 'ServiceMonitor'), 'only when asked');
  const inst = installObjects({ namespace: 'edge', image: 'i', agentToken: 't', serviceMonitor: { labels: { release: 'prom' } } });
  const sm = inst.find((o) => o.kind === 'ServiceMonitor') as unknown as K8sObject & { spec: { selector: { matchLabels: Record<string, string>; matchExpressions: { key: string; operator: 'In'; values: string[] }[] }; endpoints: { port: string; path: string }[]; namespaceSelector: { matchNames: string[] } } };
  assertClean([sm]);
  assert.equal(sm.metadata.labels!.release, 'prom');
  assert.deepEqual(sm.spec.namespaceSelector.matchNames, ['edge']);
  // what it selects, among the Services the operator makes and its own
  const w = new World([node('n1'), node('n2'), node('n3')]);
  w.step();
  const services = [...w.objects, ...inst].filter((o) => o.kind === 'Service') as (K8sObject & { spec: { ports: { name: string }[] } })[];
  const picked = services.filter((svc) => selectorMatches(sm.spec.selector, svc.metadata.labels ?? {}));
  const comp = (o: K8sObject) => o.metadata.labels!['app.kubernetes.io/component'];
  assert.deepEqual([...new Set(picked.map(comp))].sort(), ['gateway', 'operator', 'stage']);
  assert.ok(!picked.some((svc) => svc.metadata.name === 'tiny'), 'not the entry Service (its gateway is scraped through its own)');
  for (const svc of picked) {
    const ports = svc.spec.ports.map((p) => p.name);
    const scraped = sm.spec.endpoints.filter((e) => ports.includes(e.port));
    assert.equal(scraped.length, 1, `${svc.metadata.name}: scraped through exactly one port (${ports.join(',')})`);
  }
  // render: one pipeline's
  const one = serviceMonitor('default', { instance: 'tiny' }) as unknown as { metadata: { name: string }; spec: { selector: { matchLabels: Record<string, string> } } };
  assert.equal(one.metadata.name, 'tiny-metrics');
  assert.equal(one.spec.selector.matchLabels['app.kubernetes.io/instance'], 'tiny');
  // the schema catches a malformed one
  const bad = JSON.parse(JSON.stringify(sm)) as { spec: { endpoints: Record<string, unknown>[] } } & K8sObject;
  bad.spec.endpoints[0]!.interval = 15;
  assert.ok(problems(bad).some((x) => /official schema/.test(x)), problems(bad).join('\n'));
});

test('kerf k8s render: the objects of a placement.json, clean', () => {
  const prof = checkProfile(profile());
  const cluster = validateCluster({ schema: 'kerf.cluster/v1', nodes: [{ name: 'pi1', memoryMB: 512 }, { name: 'pi2', memoryMB: 512 }], links: [{ from: 'pi1', to: 'pi2', bandwidthMbps: 100 }] });
  const placement = place(placeModelFromProfiles([prof]), cluster);
  const objs = renderObjects(placement, { name: 'tiny', namespace: 'default', image: 'kerf:1', modelUri: 'https://m/tiny.onnx', sha256: SHA_A, version: '1', token: 't' });
  assertClean(objs);
  const deps = objs.filter((o) => o.kind === 'Deployment');
  assert.equal(deps.length, placement.stages.length + 1);
  for (const o of objs) {
    assert.equal(o.metadata.ownerReferences, undefined, 'no owner: nothing the operator would collect');
    assert.equal(o.metadata.labels!['app.kubernetes.io/managed-by'], 'kerf');
  }
});

test('the CRD is clean and its schema takes the documented example, refusing a typo', () => {
  assertClean([kerfPipelineCrd()]);
  const example = {
    model: {
      uri: 'https://models.example.com/resnet18-v2.onnx', sha256: SHA_A, version: 'v2', name: 'resnet18',
      inputShapes: { input: [1, 3, 224, 224] }, profile: { configMapRef: { name: 'resnet18-profile' } },
    },
    objective: 'throughput', nodeSelector: { matchLabels: { 'kerf.dev/edge': 'true' } },
    entry: { service: { type: 'NodePort', port: 8000 } }, stageCpu: 1, maxStages: 4,
    network: { bandwidthMbps: 100, rttMs: 2, linksConfigMapRef: { name: 'kerf-links' } },
    rollout: { timeoutSeconds: 600, drainSeconds: 30 }, replan: { minGain: 0.2 },
  };
  assert.doesNotThrow(() => checkSpec(example, 'example'));
  assert.throws(() => checkSpec({ ...example, rollout: { timeoutSecond: 5 } }, 'example'), /spec\.rollout: unknown field 'timeoutSecond'/);
  assert.throws(() => checkSpec({ ...example, objective: 'speed' }, 'example'), /spec\.objective: expected one of/);
});

test('Events: a valid events.k8s.io/v1 Event about the pipeline; a repeat counts into its series', async () => {
  const { eventObject, eventStep, eventKey, actionOf, SERIES_WINDOW_MS } = await import('../../src/k8s/events.js');
  const p = new World([node('n1')]).pipeline;
  const e = { type: 'Warning' as const, reason: 'RolloutFailed', message: 'x'.repeat(2000) };
  const ev = eventObject(p, e, new Date('2026-01-01T00:00:00Z'), 'kerf-operator-7d9f');
  assertClean([ev]);
  const o = ev as unknown as { note: string; action: string; eventTime: string; regarding: Record<string, string> };
  assert.equal(o.note.length, 1024, 'the note is cut to the API limit');
  assert.equal(o.action, 'Rollout');
  assert.equal(o.eventTime, '2026-01-01T00:00:00.000000Z');
  assert.deepEqual(o.regarding, { apiVersion: 'kerf.dev/v1alpha1', kind: 'KerfPipeline', name: 'tiny', namespace: 'edge', uid: 'uid-tiny' });
  assert.equal(actionOf('NodeLost'), 'Failover');
  assert.equal(actionOf('PartsFailed'), 'BuildParts');
  assert.notEqual(eventKey(p, e), eventKey(p, { ...e, message: 'other' }));
  assert.equal(eventStep(undefined, 0), 'create');
  assert.equal(eventStep({ name: 'n', count: 1, first: 0, last: 0 }, 60_000), 'series');
  assert.equal(eventStep({ name: 'n', count: 9, first: 0, last: 0 }, SERIES_WINDOW_MS + 1), 'create', 'a new Event after the window');
});
