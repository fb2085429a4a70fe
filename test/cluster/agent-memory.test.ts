/**
 * `kerf agent --memory-mb M`: a stage is admitted only when its memory by kerf's memory model
 * fits in what the host offers beside the stages it runs (else a KERF_ERR_MEMORY naming the host
 * and the figures, before anything starts), and where the cgroup v1 memory controller can be
 * used the agent's workers sit together in one memory group limited to M MB, removed when the
 * agent exits. Agents on loopback.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareModel } from '../../src/engine/index.js';
import { AgentSubstrate } from '../../src/cluster/agents.js';
import { loadHosts } from '../../src/cluster/hosts.js';
import { deploy } from '../../src/cluster/deploy.js';
import { CGROUP_MEMORY_ROOT, cgroupOf, currentMemoryGroup, memoryLimitUnavailable, processMemory } from '../../src/serve/cpu.js';
import { bytesOf, inferBinary, inputsFor, reference, sleep, thirds } from '../serve/serve-helpers.js';
import { hostsFile, startAgent, tinyNet, type RunningAgent } from './helpers.js';

async function stopAgent(a: RunningAgent): Promise<void> {
  if (a.proc.exitCode !== null || a.proc.signalCode !== null) return;
  const gone = new Promise((r) => a.proc.once('exit', r));
  a.proc.kill('SIGTERM');
  await Promise.race([gone, sleep(15_000).then(() => { a.proc.kill('SIGKILL'); })]);
}

/** Children of `pid` now (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** Skips `t`, visibly, where this machine has no memory cgroup to write (true: skipped). */
function noMemoryGroup(t: TestContext): boolean {
  const why = memoryLimitUnavailable();
  if (why === null) return false;
  t.skip(`no memory cgroup here: ${why}`);
  console.log(`SKIPPED: memory cgroup unavailable (${why})`);
  return true;
}

function tinyModel(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kerf-agent-memory-'));
  const file = join(dir, 'tiny.onnx');
  writeFileSync(file, tinyNet(1));
  return file;
}

test('kerf agent --memory-mb: a stage that does not fit is refused before anything starts, naming the host and the figures', { timeout: 120_000 }, async () => {
  const model = tinyModel();
  const prep = await prepareModel(model);
  const agents: RunningAgent[] = [];
  let sub: AgentSubstrate | null = null;
  try {
    agents.push(await startAgent(), await startAgent({ args: ['--memory-mb', '60'] }));
    sub = await AgentSubstrate.connect(await loadHosts(hostsFile([{ name: 'gw', agent: agents[0]!.agent }, { name: 'small', agent: agents[1]!.agent }])));
    const e = await deploy(sub, { model, cuts: [thirds(prep)[0]], hostOf: ['gw', 'small'], name: 'tiny' }).then(() => null, (x: unknown) => x as { code: string; message: string });
    assert.ok(e, 'the deployment was refused');
    console.log(`refused: ${e.message}`);
    assert.equal(e.code, 'KERF_ERR_MEMORY');
    assert.match(e.message, new RegExp(`^host small \\(agent ${agents[1]!.agent.replace(/\./g, '\\.')}\\): starting worker \\S+: stage \\S+ does not fit in this host's memory: it needs (\\d+) MB by kerf's memory model \\(1\\.1 × .* \\+ worker baseline 92 MB\\), but the host offers 60 MB \\(kerf agent --memory-mb 60[^)]*\\): 60 MB left$`));
    assert.ok(Number(/needs (\d+) MB/.exec(e.message)![1]) > 60);
    // nothing started on either host (the worker is started first, and was refused)
    for (const h of ['gw', 'small']) assert.deepEqual((await sub.status(h)).stages, [], `${h}: no stage`);
    for (const a of agents) assert.deepEqual(childrenOf(a.proc.pid!), [], 'no child of any agent');
    assert.match(agents[1]!.log(), /refused worker \S+: stage \S+ does not fit/);
  } finally {
    await sub?.close();
    for (const a of agents) await stopAgent(a);
  }
});

test('kerf agent --memory-mb: a second stage that does not fit beside the first is refused; the first keeps serving', { timeout: 120_000 }, async () => {
  const model = tinyModel();
  const prep = await prepareModel(model);
  const inputs = inputsFor(prep, 2);
  const want = await Promise.all(inputs.map(async (x) => bytesOf((await reference(prep, x)).y!)));
  const agents: RunningAgent[] = [];
  let sub: AgentSubstrate | null = null;
  try {
    // room for one worker (≈ 92 MB by the model, more once it runs), not two
    agents.push(await startAgent(), await startAgent({ args: ['--memory-mb', '170'] }));
    sub = await AgentSubstrate.connect(await loadHosts(hostsFile([{ name: 'gw', agent: agents[0]!.agent }, { name: 'edge', agent: agents[1]!.agent }])));
    const d = await deploy(sub, { model, cuts: [thirds(prep)[0]], hostOf: ['gw', 'edge'], name: 'tiny' });
    try {
      const rss = processMemory(d.stages[1]!.pid)?.rss ?? 0;
      const e = await deploy(sub, { model, cuts: [thirds(prep)[1]], hostOf: ['gw', 'edge'], name: 'tiny2', tiers: [{ name: 'gw2' }, { name: 'edge2' }] })
        .then(() => null, (x: unknown) => x as { code: string; message: string });
      assert.ok(e, 'the second deployment was refused');
      console.log(`refused beside the first (its RSS ${Math.round(rss / 1e6)} MB): ${e.message}`);
      assert.equal(e.code, 'KERF_ERR_MEMORY');
      assert.match(e.message, /^host edge \(agent [^)]+\): starting worker edge2: stage edge2 does not fit in this host's memory: it needs \d+ MB by kerf's memory model \(.*\), but the host offers 170 MB \(kerf agent --memory-mb 170[^)]*\) and its 1 running stage holds \d+ MB \(\S+ \d+ MB\): \d+ MB left$/);
      const held = Number(/holds (\d+) MB/.exec(e.message)![1]);
      assert.ok(held >= Math.round(rss / 1e6) - 1, `the running stage is counted at least at its resident memory (${held} MB vs ${Math.round(rss / 1e6)} MB)`);
      // the first deployment still answers exactly
      for (let k = 0; k < inputs.length; k++) {
        const r = await inferBinary(d.url, 'tiny', inputs[k]!);
        assert.ok(r.status === 200 && r.outputs.y!.equals(want[k]!), `input ${k}`);
      }
      assert.equal((await sub.status('edge')).stages.length, 1, 'only the first stage runs on edge');
    } finally {
      await d.close();
    }
  } finally {
    await sub?.close();
    for (const a of agents) await stopAgent(a);
  }
});

test('kerf agent --memory-mb: its workers sit in one memory cgroup limited to M MB, removed when the agent exits', { timeout: 120_000 }, async (t) => {
  if (noMemoryGroup(t)) return;
  const model = tinyModel();
  const prep = await prepareModel(model);
  const inputs = inputsFor(prep, 2);
  const want = await Promise.all(inputs.map(async (x) => bytesOf((await reference(prep, x)).y!)));
  const agents: RunningAgent[] = [];
  let sub: AgentSubstrate | null = null;
  let group: string | null = null;
  try {
    agents.push(await startAgent(), await startAgent({ args: ['--memory-mb', '400'] }));
    const limited = agents[1]!;
    assert.match(limited.log(), /stages held to 400 MB together \(\S+kerf-\d+-host, memory\.limit_in_bytes 399998976\)/);
    sub = await AgentSubstrate.connect(await loadHosts(hostsFile([{ name: 'gw', agent: agents[0]!.agent }, { name: 'a', agent: limited.agent }])));
    assert.equal((await sub.status('a')).memoryLimit, true);
    assert.equal((await sub.status('gw')).memoryLimit, 'no --memory-mb declared');
    const d = await deploy(sub, { model, cuts: thirds(prep), hostOf: ['gw', 'a', 'a'], name: 'tiny' });
    try {
      const pids = d.stages.slice(1).map((s) => s.pid);
      const groups = pids.map((pid) => cgroupOf('memory', CGROUP_MEMORY_ROOT, pid));
      group = groups[0]!;
      assert.ok(group && group.endsWith(`/kerf-${limited.proc.pid}-host`), `worker ${pids[0]} is in the agent's memory group (${group})`);
      assert.equal(groups[1], group, 'both workers of the host share the group');
      assert.ok(group.startsWith(currentMemoryGroup()), 'nested where the agent runs');
      assert.equal(Number(readFileSync(join(group, 'memory.limit_in_bytes'), 'utf8')), Math.floor(400e6 / 4096) * 4096, 'limited to 400 MB');
      // the workers' own memory is charged to it (their anonymous memory: the shared libraries in
      // their RSS are charged to whoever faulted them in first)
      const usage = Number(readFileSync(join(group, 'memory.usage_in_bytes'), 'utf8'));
      const anon = pids.reduce((n, p) => n + Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]) * 1024, 0);
      const rss = pids.reduce((n, p) => n + (processMemory(p)?.rss ?? 0), 0);
      console.log(`group ${group}: limit ${readFileSync(join(group, 'memory.limit_in_bytes'), 'utf8').trim()} B, usage ${Math.round(usage / 1e6)} MB, workers' anonymous memory ${Math.round(anon / 1e6)} MB (RSS ${Math.round(rss / 1e6)} MB)`);
      assert.ok(usage >= 0.8 * anon, `usage ${usage} B holds the workers' anonymous memory (${anon} B)`);
      // the gateway's host declared nothing: its stage is not in a kerf memory group
      assert.ok(!(cgroupOf('memory', CGROUP_MEMORY_ROOT, d.stages[0]!.pid) ?? '').includes('/kerf-'), 'the unlimited host has no group');
      for (let k = 0; k < inputs.length; k++) {
        const r = await inferBinary(d.url, 'tiny', inputs[k]!);
        assert.ok(r.status === 200 && r.outputs.y!.equals(want[k]!), `input ${k}`);
      }
    } finally {
      await d.close();
    }
    await sub.close();
    sub = null;
    await stopAgent(limited);
    assert.ok(!existsSync(group), `the group ${group} was removed when the agent exited`);
  } finally {
    await sub?.close();
    for (const a of agents) await stopAgent(a);
  }
});

test('a memory group is enforced by the kernel: a process allocating beyond its limit is killed, and counted', { timeout: 60_000 }, async (t) => {
  if (noMemoryGroup(t)) return;
  const { MemoryGroup } = await import('../../src/serve/cpu.js');
  const { spawn } = await import('node:child_process');
  const g = await MemoryGroup.create(`test-${process.pid}`, 64e6);
  try {
    // waits for a line on stdin (by then it is in the group), then fills 256 MB
    const p = spawn(process.execPath, ['-e', `process.stdin.once('data', () => { const a = []; for (let i = 0; i < 64; i++) a.push(Buffer.alloc(4 << 20, 1)); console.log('allocated'); process.exit(0); })`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    await g.add(p.pid!);
    const exit = new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once('exit', (c, s) => r([c, s])));
    p.stdin!.write('go\n');
    const [code, signal] = await exit;
    const st = g.stat();
    console.log(`allocating 256 MB in a 64 MB group: exit ${signal ?? code}, ${st.oomKills} OOM kill(s), peak ${Math.round(st.maxUsageBytes / 1e6)} MB, limit hit ${st.failcnt} times`);
    assert.equal(signal, 'SIGKILL', 'killed by the kernel');
    assert.ok(!out.includes('allocated'), 'it never got its 256 MB');
    assert.ok(st.oomKills >= 1 && st.maxUsageBytes <= 64e6, 'counted by the group, never above its limit');
  } finally {
    await g.remove();
  }
  assert.ok(!existsSync(g.path), 'group removed');
});

test('without a usable memory controller the agent says so once and still admits by the memory model', async () => {
  const { HostDaemon } = await import('../../src/cluster/host.js');
  const lines: string[] = [];
  const d = await HostDaemon.create({ token: 'a-token-long-enough', host: '127.0.0.1', memoryMB: 100, cacheDir: mkdtempSync(join(tmpdir(), 'kerf-agent-cache-')), memory: { parent: join(tmpdir(), 'no-such-cgroup') }, log: (l) => lines.push(l) });
  try {
    const notices = lines.filter((l) => /memory limit/.test(l));
    assert.deepEqual(notices, [`memory limit of 100 MB not enforced (no cgroup v1 memory controller at ${join(tmpdir(), 'no-such-cgroup')}): stages are only admitted by kerf's memory model`]);
    assert.equal(d.status().memoryLimit, `no cgroup v1 memory controller at ${join(tmpdir(), 'no-such-cgroup')}`);
    assert.equal(d.memoryBytes, 100e6);
  } finally {
    await d.close();
  }
});
