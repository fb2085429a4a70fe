/** kerf.hosts/v1: validated with a one-line error naming the field, unknown fields refused, tokenFile read, the docs schema in step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHosts, validateHosts, withTlsFlags } from '../../src/cluster/hosts.js';
import { validateJson } from '../../src/profile/schema.js';
import { ROOT } from '../support/shared.js';

const good = { schema: 'kerf.hosts/v1', token: 'a-long-enough-token', entry: 'pi', hosts: [{ name: 'pi', agent: '192.168.1.20:7700', memoryMB: 1800, cpus: 4 }, { name: 'edge', agent: '[fd00::2]:7700' }] };

test('validateHosts: a good file is frozen; each mistake is one line naming its field', () => {
  const h = validateHosts(good, 'h.yaml');
  assert.equal(h.entry, 'pi');
  assert.ok(Object.isFrozen(h) && Object.isFrozen(h.hosts[0]));
  const cases: [unknown, RegExp][] = [
    [{ ...good, schema: 'kerf.cluster/v1' }, /^h\.yaml: schema: 'kerf\.cluster\/v1' is not kerf\.hosts\/v1$/],
    [{ ...good, extra: 1 }, /^h\.yaml: extra: unknown field/],
    [{ ...good, token: undefined }, /^h\.yaml: token: expected the cluster token/],
    [{ ...good, tokenFile: 't' }, /^h\.yaml: token: give token or tokenFile, not both$/],
    [{ ...good, token: 'short' }, /^h\.yaml: token: a token of 5 characters is too easy to guess/],
    [{ ...good, entry: 'cloud' }, /^h\.yaml: entry: "cloud" is not one of the hosts \(pi, edge\)/],
    [{ ...good, hosts: [] }, /^h\.yaml: hosts: expected a non-empty list/],
    [{ ...good, hosts: [{ ...good.hosts[0], port: 1 }] }, /^h\.yaml: hosts\[0\]\.port: unknown field/],
    [{ ...good, hosts: [{ name: 'pi', agent: 'pi.local' }] }, /^h\.yaml: hosts\[0\]\.agent: "pi\.local": expected "host:port"/],
    [{ ...good, hosts: [{ name: 'pi', agent: 'pi:0' }] }, /hosts\[0\]\.agent/],
    [{ ...good, hosts: [{ name: 'pi', agent: 'a:1', cpus: -1 }] }, /^h\.yaml: hosts\[0\]\.cpus: -1: expected a positive number$/],
    [{ ...good, hosts: [good.hosts[0], good.hosts[0]] }, /^h\.yaml: hosts\[1\]\.name: 'pi' is listed twice$/],
    [{ ...good, hosts: [{ name: 'p i', agent: 'a:1' }] }, /hosts\[0\]\.name: "p i" is not a host name/],
    [{ ...good, tls: 'yes' }, /^h\.yaml: tls: expected true or a mapping \{ca\?, cert\?, key\?\}/],
    [{ ...good, tls: { ca: 'ca.pem', certificate: 'c.pem' } }, /^h\.yaml: tls\.certificate: unknown field/],
    [{ ...good, tls: { cert: 'c.pem' } }, /^h\.yaml: tls\.key: tls\.cert and tls\.key go together/],
    [{ ...good, tls: { ca: '' } }, /^h\.yaml: tls\.ca: "": expected a PEM file name$/],
  ];
  for (const [doc, msg] of cases) {
    assert.throws(() => validateHosts(JSON.parse(JSON.stringify(doc)), 'h.yaml'), (e: Error & { code?: string }) => e.code === 'KERF_ERR_CONFIG' && msg.test(e.message) && !e.message.includes('\n'), `${JSON.stringify(doc)} → ${msg}`);
  }
});

test('loadHosts: YAML with a tokenFile beside it; unreadable files named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-hosts-file-'));
  writeFileSync(join(dir, 'token'), 'from-the-token-file\n');
  writeFileSync(join(dir, 'hosts.yaml'), 'schema: kerf.hosts/v1\ntokenFile: token\nentry: a\nhosts:\n  - { name: a, agent: "10.0.0.1:7700" }\n');
  const h = await loadHosts(join(dir, 'hosts.yaml'));
  assert.equal(h.token, 'from-the-token-file');
  writeFileSync(join(dir, 'bad.yaml'), 'schema: kerf.hosts/v1\ntokenFile: nope\nentry: a\nhosts: []\n');
  await assert.rejects(loadHosts(join(dir, 'bad.yaml')), /bad\.yaml: tokenFile: cannot read .*nope \(ENOENT\)/);
  await assert.rejects(loadHosts(join(dir, 'none.yaml')), { code: 'KERF_ERR_FILE' });
  // tls files are relative to the hosts file, checked now; flags replace the file's tls
  writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
  writeFileSync(join(dir, 'tls.yaml'), 'schema: kerf.hosts/v1\ntoken: a-long-enough-token\nentry: a\nhosts:\n  - { name: a, agent: "10.0.0.1:7700" }\ntls: { ca: ca.pem }\n');
  assert.deepEqual((await loadHosts(join(dir, 'tls.yaml'))).tls, { ca: join(dir, 'ca.pem') });
  assert.deepEqual(withTlsFlags(await loadHosts(join(dir, 'tls.yaml')), { 'tls-ca': '/x/other.pem' }).tls, { ca: '/x/other.pem' });
  assert.throws(() => withTlsFlags(h, { 'tls-cert': 'c.pem' }), /--tls-cert and --tls-key go together/);
  assert.equal(withTlsFlags(h, {}), h);
  assert.deepEqual(validateHosts({ ...good, tls: true }, 'h').tls, {});
  writeFileSync(join(dir, 'tls-bad.yaml'), 'schema: kerf.hosts/v1\ntoken: a-long-enough-token\nentry: a\nhosts:\n  - { name: a, agent: "10.0.0.1:7700" }\ntls: { ca: nope.pem }\n');
  await assert.rejects(loadHosts(join(dir, 'tls-bad.yaml')), /tls-bad\.yaml: tls\.ca: cannot read .*nope\.pem \(ENOENT\)/);
  writeFileSync(join(dir, 'broken.yaml'), 'schema: [\n');
  await assert.rejects(loadHosts(join(dir, 'broken.yaml')), /broken\.yaml: not valid YAML or JSON/);
});

test('docs/schema/hosts.schema.json accepts what validateHosts accepts and refuses an unknown field', () => {
  const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'schema', 'hosts.schema.json'), 'utf8'));
  assert.equal(validateJson(schema, good), null);
  assert.match(validateJson(schema, { ...good, hosts: [{ ...good.hosts[0], port: 1 }] }) ?? '', /port/);
  assert.match(validateJson(schema, JSON.parse(JSON.stringify({ ...good, entry: undefined }))) ?? '', /entry/);
  assert.equal(validateJson(schema, { ...good, tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' } }), null);
  assert.equal(validateJson(schema, { ...good, tls: true }), null);
  assert.match(validateJson(schema, { ...good, tls: { certificate: 'c.pem' } }) ?? '', /certificate/);
});
