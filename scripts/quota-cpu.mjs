#!/usr/bin/env node
// `node scripts/quota-cpu.mjs [--share F] [--runs N] [--periods MS,…] [--neighbour MB] [--watch N]`: what holding work to a
// small share of a core (a cgroup CFS quota, as `kerf profile --cpus` and `kerf demo` hold their
// tiers) does to the CPU that work costs. In this process, one onnxruntime thread, pinned to one
// CPU: N runs of the demo's model (PaddleOCR's detector, 1×3×320×320) and N runs of a fixed
// arithmetic loop, at full speed and then under the quota (period as `kerf profile --cpus` sets
// it, cpuPeriodForShare; with `--periods 20,100,200`, under each of those CFS periods in turn, a
// run under each per round, so a change in the machine's speed falls on all alike), each run's
// CPU seconds from process.cpuUsage(). With `--neighbour MB`, a
// child process pinned to the same CPU writes through MB of memory without pause (at nice 0, so
// it takes the core whenever the quota leaves it idle), as other work on a shared machine would.
// Prints the medians and quota ÷ full speed for each. With `--watch N`, then N more runs of the
// model held to the share, one a second: each run's wall and CPU milliseconds and the page
// faults it took, and how many runs cost over 1.25× the median CPU (how steady work held to a
// share is on this machine, minute to minute). Linux, cgroup v1 cpu controller, root.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url);
const dist = (p) => new URL(`dist/src/${p}`, root).href;
const { values } = parseArgs({ options: {
  share: { type: 'string', default: '0.05' }, runs: { type: 'string', default: '9' }, neighbour: { type: 'string' }, watch: { type: 'string', default: '0' },
  periods: { type: 'string' },
} });
const watch = Number(values.watch);
if (!Number.isInteger(watch) || watch < 0) { process.stderr.write(`quota-cpu: --watch '${values.watch}': expected a whole number of runs\n`); process.exit(2); }
const share = Number(values.share), runs = Number(values.runs), mb = values.neighbour === undefined ? 0 : Number(values.neighbour);
if (!(share > 0 && share < 1)) { process.stderr.write(`quota-cpu: --share '${values.share}': expected a share of one core between 0 and 1\n`); process.exit(2); }
if (!Number.isInteger(runs) || runs < 1) { process.stderr.write(`quota-cpu: --runs '${values.runs}': expected a positive integer\n`); process.exit(2); }
if (!(mb >= 0 && Number.isFinite(mb))) { process.stderr.write(`quota-cpu: --neighbour '${values.neighbour}': expected megabytes\n`); process.exit(2); }
const periodsMs = values.periods === undefined ? null : values.periods.split(',').map(Number);
if (periodsMs && !periodsMs.every((p) => p >= 1 && p <= 1000)) { process.stderr.write(`quota-cpu: --periods '${values.periods}': expected CFS periods in milliseconds (1–1000), comma-separated\n`); process.exit(2); }
// The kernel's smallest quota is 1 ms: a shorter period would hand out more than the share.
const tooShort = periodsMs?.find((p) => p * share < 1);
if (tooShort !== undefined) { process.stderr.write(`quota-cpu: --periods: ${tooShort} ms × share ${share} is under the kernel's 1 ms minimum quota; use ${Math.ceil(1 / share)} ms or more\n`); process.exit(2); }

const { CpuGroup, cpuQuotaUnavailable, cpuPeriodForShare, currentCpuGroup, moveToCpuGroup } = await import(dist('serve/cpu.js'));
const { pinToOneCpu } = await import(dist('profile/profile.js'));
const { Session } = await import(dist('engine/ort.js'));
const { prepareModel } = await import(dist('engine/prepare.js'));
const { randomInputs } = await import(dist('engine/shapes.js'));
const { normalisedBytes } = await import(dist('engine/verify.js'));
const { ocrDetector } = await import(dist('cli/demo-model.js'));
const why = cpuQuotaUnavailable();
if (why !== null) { process.stderr.write(`quota-cpu: no CPU quota here: ${why}\n`); process.exit(1); }

const prep = await prepareModel(ocrDetector(), { inputShapes: { x: [1, 3, 320, 320] } });
const feeds = randomInputs(prep.model, prep.inputShapes, 1);
const outs = prep.model.outputs.map((o) => o.name);
const session = await Session.create(normalisedBytes(prep), { threads: 1, label: 'quota-cpu' });
const now = () => performance.now() / 1000;
const cpuS = (c0) => { const d = process.cpuUsage(c0); return (d.user + d.system) / 1e6; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
// its result is kept, so the loop is not optimised away
let sink = 0;
const loop = () => { let x = 0; for (let i = 0; i < 2e7; i++) x += i * 0.5; sink += x; };
/** CPU seconds of one run of `fn`; the median of `runs` of them. */
const one = async (fn) => { const c0 = process.cpuUsage(); await fn(); return cpuS(c0); };
const time = async (fn) => { const t = []; for (let i = 0; i < runs; i++) t.push(await one(fn)); return median(t); };

const unpin = pinToOneCpu(process.pid);
const cpu = execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' }).trim().split(/\s+/).pop();
let neighbour = null;
if (mb > 0) {
  neighbour = spawn(process.execPath, ['-e', `const b = Buffer.alloc(${Math.round(mb * 2 ** 20)}); for (;;) for (let i = 0; i < b.length; i += 64) b[i]++;`], { stdio: 'ignore' });
  execFileSync('taskset', ['-c', '-p', cpu, String(neighbour.pid)], { stdio: 'ignore' });
}
const periodsUs = periodsMs ? periodsMs.map((p) => Math.round(p * 1000)) : [cpuPeriodForShare(share)];
const groups = [];
const home = currentCpuGroup();
try {
  for (const periodUs of periodsUs) groups.push(await CpuGroup.create(`quota-cpu-${process.pid}-${periodUs}`, share, { periodUs }));
  const group = groups[0];
  for (let i = 0; i < 3; i++) { await session.run(feeds, outs); loop(); }
  const full = { model: await time(() => session.run(feeds, outs)), loop: await time(async () => loop()) };
  // Held: a run of each under each period in turn (one unrecorded run of the model first).
  const held = groups.map(() => ({ model: [], loop: [] }));
  for (let r = 0; r < runs; r++) {
    for (const [k, g] of groups.entries()) {
      await g.add(process.pid);
      if (r === 0) await session.run(feeds, outs);
      held[k].model.push(await one(() => session.run(feeds, outs)));
      held[k].loop.push(await one(async () => loop()));
      await moveToCpuGroup(home, process.pid);
    }
  }
  const ms = (s) => `${(s * 1e3).toFixed(1)} ms`;
  process.stdout.write(`CPU ${cpu}, ${runs} runs each, median CPU a run${mb > 0 ? `, a neighbour writing through ${mb} MB on the same CPU` : ''}\n`);
  for (const [k, g] of groups.entries()) {
    const m = median(held[k].model), l = median(held[k].loop);
    process.stdout.write(`  model (one onnxruntime thread): full speed ${ms(full.model)}, held to ${share} of a core (period ${g.periodUs / 1000} ms) ${ms(m)}: ${(m / full.model).toFixed(2)}×\n`);
    process.stdout.write(`  arithmetic loop:                full speed ${ms(full.loop)}, held to ${share} of a core (period ${g.periodUs / 1000} ms) ${ms(l)}: ${(l / full.loop).toFixed(2)}×\n`);
  }
  if (watch > 0) {
    // minor and major faults of this process (fields 10 and 12 of /proc/self/stat)
    const faults = () => { const f = readFileSync('/proc/self/stat', 'utf8'); const a = f.slice(f.lastIndexOf(')') + 2).split(' '); return Number(a[7]) + Number(a[9]); };
    await group.add(process.pid);
    process.stdout.write(`watching: ${watch} runs of the model held to ${share} of a core (period ${group.periodUs / 1000} ms), one a second (time, wall ms, CPU ms, page faults)\n`);
    const rows = [];
    for (let i = 0; i < watch; i++) {
      const t0 = now(), c0 = process.cpuUsage(), f0 = faults();
      await session.run(feeds, outs);
      const row = { at: new Date().toISOString().slice(11, 19), wall: now() - t0, cpu: cpuS(c0), faults: faults() - f0 };
      rows.push(row);
      process.stdout.write(`  ${row.at} ${(row.wall * 1e3).toFixed(0)} ${(row.cpu * 1e3).toFixed(1)} ${row.faults}\n`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await moveToCpuGroup(home, process.pid);
    const m = median(rows.map((r) => r.cpu));
    const slow = rows.filter((r) => r.cpu > 1.25 * m);
    process.stdout.write(`  median CPU ${ms(m)} (${(m / full.model).toFixed(2)}× full speed); ${slow.length} of ${watch} runs over 1.25× that` +
      `${slow.length ? `, up to ${(Math.max(...slow.map((r) => r.cpu)) / m).toFixed(2)}×, at ${slow.map((r) => r.at).join(' ')}` : ''}\n`);
  }
} finally {
  await moveToCpuGroup(home, process.pid).catch(() => undefined);
  neighbour?.kill('SIGKILL');
  unpin?.();
  await session.close();
  for (const g of groups) await g.remove(2000).catch(() => undefined);
}
