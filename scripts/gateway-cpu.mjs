#!/usr/bin/env node
// `node scripts/gateway-cpu.mjs [--malloc gateway|worker] [--requests N] [--model FILE --input-shape N=DxD…]`:
// the CPU a kerf gateway spends on each request, one request at a time, at full speed. It serves
// the model all on the device (`kerf worker --gateway`, one thread) and reads the gateway's
// per-thread CPU (/proc/PID/task/*/schedstat) around every request. Default model: a stand-in of
// PaddleOCR's detector (the demo's model) with the same input (1×3×320×320, 1.2 MB) and output
// whose compute is next to nothing, so what is left is the gateway's own work: HTTP, copying the
// input to its compute thread and the answer back. `--malloc gateway` (default) starts it with the
// glibc settings kerf starts a gateway with (GATEWAY_MALLOC_ENV, src/serve/malloc-env.ts: freed
// buffers kept for the next request); `--malloc worker` with a worker's (two arenas, glibc's
// sliding thresholds). Prints each request's milliseconds and the medians.
// Linux only.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url);
const dist = (p) => new URL(`dist/src/${p}`, root).href;
const { values } = parseArgs({ options: {
  malloc: { type: 'string', default: 'gateway' }, requests: { type: 'string', default: '60' },
  model: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
} });
if (!['gateway', 'worker'].includes(values.malloc)) { process.stderr.write(`gateway-cpu: --malloc '${values.malloc}': expected gateway or worker\n`); process.exit(2); }
const n = Number(values.requests);
if (!Number.isInteger(n) || n < 1) { process.stderr.write(`gateway-cpu: --requests '${values.requests}': expected a positive integer\n`); process.exit(2); }

const { prepareModel } = await import(dist('engine/prepare.js'));
const { randomInputs } = await import(dist('engine/shapes.js'));
const { OipClient } = await import(dist('serve/client.js'));
const { processThreadsCpuSeconds } = await import(dist('serve/cpu.js'));
const { GATEWAY_MALLOC_ENV, WORKER_MALLOC_ENV } = await import(dist('serve/malloc-env.js'));
const { parseInputShapes } = await import(dist('cli/args.js'));
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
  const gw = spawn(process.execPath, [new URL('bin/kerf.js', root).pathname, 'worker', '--gateway', '--listen', '127.0.0.1:0', '--model', file, '--model-name', 'm', '--json', ...shapeArgs],
    { stdio: ['ignore', 'pipe', 'inherit'], env });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    gw.stdout.on('data', (c) => { out += c; const m = /"address":"([^"]+)"/.exec(out); if (m) resolve(`http://${m[1]}`); });
    gw.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening: ${out.trim().split('\n').pop()}`)));
  });
  const c = new OipClient(url, 'm');
  try {
    for (let i = 0; i < 3; i++) await c.infer(inputs[i % inputs.length]);
    const ms = [];
    for (let i = 0; i < n; i++) {
      const c0 = processThreadsCpuSeconds(gw.pid);
      const r = await c.infer(inputs[i % inputs.length]);
      if (r.status !== 200) throw new Error(`request ${i}: ${r.status} ${r.error?.message}`);
      ms.push((processThreadsCpuSeconds(gw.pid) - c0) * 1e3);
    }
    const median = (xs) => { const t = [...xs].sort((a, b) => a - b); return t[t.length >> 1]; };
    process.stdout.write(`malloc ${values.malloc}: CPU ms per request, in order: ${ms.map((x) => x.toFixed(1)).join(' ')}\n`);
    process.stdout.write(`median ${median(ms).toFixed(1)} ms; first half ${median(ms.slice(0, n >> 1)).toFixed(1)}, second half ${median(ms.slice(n >> 1)).toFixed(1)}; max ${Math.max(...ms).toFixed(1)}\n`);
  } finally {
    c.close();
    gw.kill();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
