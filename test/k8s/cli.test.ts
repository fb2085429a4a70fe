/** `kerf k8s render|install|reconcile` and `kerf operator` as a user runs them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { place, placeModelFromProfiles, validateCluster } from '../../src/plan/place/index.js';
import { checkProfile } from '../../src/profile/schema.js';
import { KERF } from '../serve/serve-helpers.js';
import { node, pipeline, profile, profileConfigMap, SHA_A } from './fixtures.js';
import { problems } from './validate.js';
import type { K8sObject } from '../../src/k8s/types.js';

const kerf = (...argv: string[]) => spawnSync(process.execPath, [KERF, ...argv], { encoding: 'utf8', timeout: 60_000 });

test('kerf k8s install and render write clean manifests; reconcile prints what the operator would do', () => {
  const dir = mkdtempSync(join(tmpdir(), `kerf-k8s-cli-${process.pid}-`));
  try {
    const inst = kerf('k8s', 'install', '--image', 'kerf:0.1.0', '-o', join(dir, 'install'));
    assert.equal(inst.status, 0, inst.stderr);
    const files = readdirSync(join(dir, 'install')).sort();
    assert.ok(files.includes('kustomization.yaml'));
    const objs = files.filter((f) => f !== 'kustomization.yaml').map((f) => parseAllDocuments(readFileSync(join(dir, 'install', f), 'utf8'))[0]!.toJS() as K8sObject);
    assert.equal(objs.length, 11);
    assert.deepEqual(objs.flatMap(problems), []);
    const stdout = kerf('k8s', 'install', '--image', 'kerf:0.1.0');
    assert.equal(parseAllDocuments(stdout.stdout).length, 11, 'to stdout as a multi-document YAML');
    const withSm = kerf('k8s', 'install', '--image', 'kerf:0.1.0', '--service-monitor', '--service-monitor-label', 'release=prom');
    const smDocs = parseAllDocuments(withSm.stdout).map((d) => d.toJS() as K8sObject);
    assert.equal(smDocs.length, 12);
    assert.equal(smDocs[11]!.kind, 'ServiceMonitor');
    assert.equal(smDocs[11]!.metadata.labels!.release, 'prom');
    const noSm = kerf('k8s', 'install', '--image', 'kerf:0.1.0', '--service-monitor-label', 'release=prom');
    assert.equal(noSm.status, 2);
    assert.match(noSm.stderr, /--service-monitor-label needs --service-monitor/);

    const placement = place(placeModelFromProfiles([checkProfile(profile())]), validateCluster({ schema: 'kerf.cluster/v1', nodes: [{ name: 'a', memoryMB: 400 }, { name: 'b', memoryMB: 400 }], links: [{ from: 'a', to: 'b', bandwidthMbps: 100 }] }));
    writeFileSync(join(dir, 'placement.json'), JSON.stringify(placement));
    const r = kerf('k8s', 'render', join(dir, 'placement.json'), '--image', 'kerf:1', '--model-uri', 'https://m.example/tiny.onnx', '--sha256', SHA_A, '-o', join(dir, 'render'));
    assert.equal(r.status, 0, r.stderr);
    const rendered = readdirSync(join(dir, 'render')).filter((f) => f !== 'kustomization.yaml').map((f) => parseAllDocuments(readFileSync(join(dir, 'render', f), 'utf8'))[0]!.toJS() as K8sObject);
    assert.deepEqual(rendered.flatMap(problems), []);
    assert.equal(rendered.filter((o) => o.kind === 'Deployment').length, placement.stages.length + 1);
    const noSha = kerf('k8s', 'render', join(dir, 'placement.json'), '--image', 'kerf:1', '--model-uri', 'https://m/x.onnx');
    assert.equal(noSha.status, 2);
    assert.match(noSha.stderr, /--sha256 is required/);

    const list = { apiVersion: 'v1', kind: 'List', items: [pipeline(), node('n1'), node('n2'), profileConfigMap()] };
    writeFileSync(join(dir, 'list.json'), JSON.stringify(list));
    const rec = kerf('k8s', 'reconcile', '--state', join(dir, 'list.json'), '--now', '2026-01-01T00:00:00Z');
    assert.equal(rec.status, 0, rec.stderr);
    assert.match(rec.stdout, /KerfPipeline edge\/tiny:\n {2}apply \(\d+\):\n {4}Secret tiny-token/);
    assert.match(rec.stdout, /Placed=True Placed: placement \w+: s0 blocks/);
    const js = JSON.parse(kerf('k8s', 'reconcile', '--state', join(dir, 'list.json'), '--json').stdout) as { pipelines: { result: { apply: unknown[] } }[] };
    assert.ok(js.pipelines[0]!.result.apply.length > 0);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ kind: 'Pod', metadata: { name: 'x' } }));
    const bad = kerf('k8s', 'reconcile', '--state', join(dir, 'bad.json'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad\.json: expected a Kubernetes List/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kerf operator: --image required; a kubeconfig that points nowhere is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), `kerf-k8s-op-${process.pid}-`));
  try {
    const r = kerf('operator');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--image is required/);
    writeFileSync(join(dir, 'kc.yaml'), 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
    const r2 = kerf('operator', '--image', 'kerf:1', '--kubeconfig', join(dir, 'kc.yaml'));
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /kc\.yaml: no current cluster/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
