#!/usr/bin/env node
// `node scripts/gateway-cpu.mjs [--malloc gateway|worker] [--requests N] [--share F] [--model FILE --input-shape N=DxD…]`:
// the CPU a kerf gateway spends on each request, one request at a time, at full speed. It serves
// the model all on the device (`kerf worker --gateway`, one thread) and reads the gateway's
// per-thread CPU (/proc/PID/task/*/schedstat) around every request. Default model: a stand-in of
// PaddleOCR's detector (the demo's model) with the same input (1×3×320×320, 1.2 MB) and output
// whose compute is next to nothing, so what is left is the gateway's own work: HTTP, copying the
// input to its compute thread and the answer back. `--malloc gateway` (default) starts it with the
// glibc settings and the V8 flag kerf starts a gateway with (GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS,
// src/serve/malloc-env.ts: freed buffers kept for the next request, a larger old generation);
// `--malloc worker` with a worker's (two arenas, glibc's sliding thresholds, no flag). Prints each request's milliseconds and the medians.
// With `--share F` (e.g. `--share 0.05 --model <the demo's detector> --input-shape x=1x3x320x320`):
// after 60 requests at full speed, the gateway is held to F of a core (a cgroup CFS quota, the
// period `kerf profile --cpus` uses, pinned to one CPU, as `kerf demo` holds its device), and after
// each request this process runs the model alone, one thread, held to the same share: each
// request's CPU and the model's alone, as multiples of the model's CPU at full speed, side by side
// (what serving adds to work held to a share, in the same seconds), with the gateway's minor page
// faults and the KiB the kernel's free page reporting handed back to the host meanwhile (where
// /sys/module/page_reporting exists: a VM whose balloon reports free pages). Linux only; --share
// needs root and the cgroup v1 cpu controller.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url);
const dist = (p) => new URL(`dist/src/${p}`, root).href;
const { values } = parseArgs({ options: {
  malloc: { type: 'string', default: 'gateway' }, requests: { type: 'string', default: '60' },
  model: { type: 'string' }, 'input-shape': { type: 'string', multiple: true }, share: { type: 'string' },
} });
if (!['gateway', 'worker'].includes(values.malloc)) { process.stderr.write(`gateway-cpu: --malloc '${values.malloc}': expected gateway or worker\n`); process.exit(2); }
const n = Number(values.requests);
if (!Number.isInteger(n) || n < 1) { process.stderr.write(`gateway-cpu: --requests '${values.requests}': expected a positive integer\n`); process.exit(2); }
const share = values.share === undefined ? null : Number(values.share);
if (share !== null && !(share > 0 && share < 1)) { process.stderr.write(`gateway-cpu: --share '${values.share}': expected a share of one core between 0 and 1\n`); process.exit(2); }

const { prepareModel } = await import(dist('engine/prepare.js'));
const { randomInputs } = await import(dist('engine/shapes.js'));
const { OipClient } = await import(dist('serve/client.js'));
const { processThreadsCpuSeconds } = await import(dist('serve/cpu.js'));
const { GATEWAY_MALLOC_ENV, GATEWAY_NODE_FLAGS, WORKER_MALLOC_ENV } = await import(dist('serve/malloc-env.js'));
const { parseInputShapes } = await import(dist('cli/args.js'));
const median = (xs) => { const t = [...xs].sort((a, b) => a - b); return t[t.length >> 1]; };
const work = mkdtempSync(join(tmpdir(), 'kerf-gwcpu-'));
try {
  let file = values.model, shapes = parseInputShapes(values['input-shape']);
  if (!file) {
    const { ocrDetector } = await import(dist('cli/demo-model.js'));
    const { echoModel } = await import(dist('cli/demo.js'));
    shapes = { x: [1, 3, 320, 320], ...shapes };
    file = join(work, 'echo.onnx');
    writeFileSync(file, echoModel(await prepareModel(ocrDetector(), { inputShapes: shapes })));
  }
  const prep = await prepareModel(file, { inputShapes: shapes });
  const inputs = Array.from({ length: 6 }, (_, i) => randomInputs(prep.model, prep.inputShapes, 100 + i));
  const env = { ...process.env, ...(values.malloc === 'gateway' ? GATEWAY_MALLOC_ENV : WORKER_MALLOC_ENV), KERF_TOKEN: 'gateway-cpu' };
  const shapeArgs = Object.entries(prep.inputShapes).flatMap(([k, v]) => ['--input-shape', `${k}=${v.join('x')}`]);
  const gw = spawn(process.execPath, [...(values.malloc === 'gateway' ? GATEWAY_NODE_FLAGS : []), new URL('bin/kerf.js', root).pathname, 'worker', '--gateway', '--listen', '127.0.0.1:0', '--model', file, '--model-name', 'm', '--json', ...shapeArgs],
    { stdio: ['ignore', 'pipe', 'inherit'], env });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    gw.stdout.on('data', (c) => { out += c; const m = /"address":"([^"]+)"/.exec(out); if (m) resolve(`http://${m[1]}`); });
    gw.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening: ${out.trim().split('\n').pop()}`)));
  });
  const c = new OipClient(url, 'm');
  try {
    if (share !== null) await heldSideBySide(c, gw.pid, prep, inputs, share, n);
    else {
      for (let i = 0; i < 3; i++) await c.infer(inputs[i % inputs.length]);
      const ms = [];
      for (let i = 0; i < n; i++) {
        const c0 = processThreadsCpuSeconds(gw.pid);
        const r = await c.infer(inputs[i % inputs.length]);
        if (r.status !== 200) throw new Error(`request ${i}: ${r.status} ${r.error?.message}`);
        ms.push((processThreadsCpuSeconds(gw.pid) - c0) * 1e3);
      }
      process.stdout.write(`malloc ${values.malloc}: CPU ms per request, in order: ${ms.map((x) => x.toFixed(1)).join(' ')}\n`);
      process.stdout.write(`median ${median(ms).toFixed(1)} ms; first half ${median(ms.slice(0, n >> 1)).toFixed(1)}, second half ${median(ms.slice(n >> 1)).toFixed(1)}; max ${Math.max(...ms).toFixed(1)}\n`);
    }
  } finally {
    c.close();
    gw.kill();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** --share: the gateway held to `share`, request by request, beside the model alone held to the same share in this process. */
async function heldSideBySide(c, pid, prep, inputs, share, n) {
  const { CpuGroup, cpuPeriodForShare, currentCpuGroup, moveToCpuGroup } = await import(dist('serve/cpu.js'));
  const { pinToOneCpu } = await import(dist('profile/profile.js'));
  const { Session } = await import(dist('engine/ort.js'));
  const { normalisedBytes } = await import(dist('engine/verify.js'));
  const outs = prep.model.outputs.map((o) => o.name);
  const session = await Session.create(normalisedBytes(prep), { threads: 1, label: 'gateway-cpu (the model alone)' });
  const cpuMs = async (fn) => { const c0 = process.cpuUsage(); await fn(); const d = process.cpuUsage(c0); return (d.user + d.system) / 1e3; };
  const periodUs = cpuPeriodForShare(share);
  const gwGroup = await CpuGroup.create(`gateway-cpu-${process.pid}-gw`, share, { periodUs });
  const aloneGroup = await CpuGroup.create(`gateway-cpu-${process.pid}-alone`, share, { periodUs });
  const home = currentCpuGroup();
  let unpin = null;
  try {
    const full = [];
    for (let i = 0; i < 8; i++) full.push(await cpuMs(() => session.run(inputs[0], outs)));
    const fullMs = median(full.slice(2));
    for (let i = 0; i < 60; i++) await c.infer(inputs[i % inputs.length]);
    await gwGroup.add(pid);
    pinToOneCpu(pid);
    // Pinned once, here, to the same CPU: taskset forks this process, and the model's memory,
    // copy-on-write until it is written again, would cost the next run ~4× its CPU.
    unpin = pinToOneCpu(process.pid);
    await c.infer(inputs[0]);
    await session.run(inputs[0], outs);
    process.stdout.write(`the model at full speed: ${fullMs.toFixed(1)} ms of CPU a run; held to ${share} of a core (period ${periodUs / 1000} ms), pinned:\n`);
    process.stdout.write('  time      served: wall ms, CPU ms (× full speed), faults, KiB reported   the model alone: CPU ms (× full speed)\n');
    // minor faults (field 10 of /proc/PID/stat); KiB of free pages reported to the host so far
    const faults = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8'); return Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[7]); };
    const reported = () => { try { return Number(readFileSync('/sys/module/page_reporting/parameters/reported_kib', 'utf8')); } catch { return NaN; } };
    const served = [], alone = [];
    for (let i = 0; i < n; i++) {
      const c0 = processThreadsCpuSeconds(pid), t0 = performance.now(), f0 = faults(), k0 = reported();
      const r = await c.infer(inputs[i % inputs.length]);
      if (r.status !== 200) throw new Error(`request ${i}: ${r.status} ${r.error?.message}`);
      const wall = performance.now() - t0, cpu = (processThreadsCpuSeconds(pid) - c0) * 1e3, df = faults() - f0, dk = reported() - k0;
      await aloneGroup.add(process.pid);
      let a;
      try {
        a = await cpuMs(() => session.run(inputs[i % inputs.length], outs));
      } finally {
        await moveToCpuGroup(home, process.pid);
      }
      served.push(cpu); alone.push(a);
      process.stdout.write(`  ${new Date().toISOString().slice(11, 19)}  ${wall.toFixed(0).padStart(5)}  ${cpu.toFixed(1).padStart(6)} (${(cpu / fullMs).toFixed(2)}×)  ${String(df).padStart(4)}  ${Number.isNaN(dk) ? '   -' : String(dk).padStart(6)}                ${a.toFixed(1).padStart(6)} (${(a / fullMs).toFixed(2)}×)\n`);
    }
    process.stdout.write(`median: served ${(median(served) / fullMs).toFixed(2)}× the model's full-speed CPU, the model alone ${(median(alone) / fullMs).toFixed(2)}×\n`);
  } finally {
    await moveToCpuGroup(home, process.pid).catch(() => undefined);
    unpin?.();
    await session.close();
    // the gateway ends here, not in the caller, so its group can go (the caller closes the client)
    process.kill(pid);
    await new Promise((r) => setTimeout(r, 300));
    await gwGroup.remove(3000).catch(() => undefined);
    await aloneGroup.remove(3000).catch(() => undefined);
  }
}
