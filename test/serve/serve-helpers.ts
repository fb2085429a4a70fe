/** Helpers of the serving tests: reference outputs, OIP requests over HTTP, child workers by PID. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import * as http from 'node:http';
import { ROOT } from '../support/shared.js';
import { Session, normalisedBytes, randomInputs, type HostTensor, type Prepared } from '../../src/engine/index.js';
import { blockCuts } from '../../src/graph/cuts.js';
import { encodeInferRequest } from '../../src/serve/oip.js';
import type { LoadCase } from '../../src/serve/switch-load.js';

export const TOKEN = 'serve-test-token';
export const KERF = join(ROOT, 'bin', 'kerf.js');

/** Whole-model outputs for `feeds` (optimisation disabled, as every tier runs). */
export async function reference(prep: Prepared, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const s = await Session.create(normalisedBytes(prep), { label: 'whole' });
  try { return await s.run(feeds); } finally { await s.close(); }
}

/** Single-tensor cuts at about 1/3 and 2/3 of the model (by position). */
export function thirds(prep: Prepared): [number, number] {
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  return [ids[Math.floor(ids.length / 3)]!, ids[Math.floor((2 * ids.length) / 3)]!];
}

export function bytesOf(t: { data: unknown }): Buffer {
  const d = t.data as ArrayBufferView;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

export interface HttpResult { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function httpRequest(url: string, method: string, body?: Buffer | string, headers: Record<string, string | number> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POST an OIP infer with binary input and binary output; returns status and the output bytes (or the error). */
export async function inferBinary(base: string, model: string, inputs: Record<string, HostTensor>, id?: string): Promise<{ status: number; id?: string; outputs: Record<string, Buffer>; error?: string; code?: string }> {
  const { head, data } = encodeInferRequest(Object.entries(inputs).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, data: t.data as ArrayBufferView })), { ...(id !== undefined ? { id } : {}), binaryOutput: true });
  const body = Buffer.concat([head, ...data]);
  const r = await httpRequest(`${base}/v2/models/${model}/infer`, 'POST', body, { 'inference-header-content-length': head.length, 'content-type': 'application/octet-stream' });
  if (r.status !== 200) {
    const e = JSON.parse(r.body.toString()) as { error: string; code: string };
    return { status: r.status, outputs: {}, error: e.error, code: e.code };
  }
  const hl = Number(r.headers['inference-header-content-length']);
  const doc = JSON.parse(r.body.subarray(0, hl).toString()) as { id?: string; outputs: { name: string; parameters: { binary_data_size: number } }[] };
  const outputs: Record<string, Buffer> = {};
  let o = hl;
  for (const out of doc.outputs) { outputs[out.name] = r.body.subarray(o, o + out.parameters.binary_data_size); o += out.parameters.binary_data_size; }
  return { status: 200, ...(doc.id !== undefined ? { id: doc.id } : {}), outputs };
}

/** `n` load cases (startLoad): seeded inputs and the unsplit model's outputs for them. */
export async function loadCases(prep: Prepared, n: number): Promise<LoadCase[]> {
  const out: LoadCase[] = [];
  for (const f of inputsFor(prep, n)) {
    const ref = await reference(prep, f);
    out.push({
      inputs: Object.entries(f).map(([name, t]) => ({ name, dtype: t.dtype as 'float32', dims: t.dims, data: t.data as Float32Array })),
      expect: Object.fromEntries(prep.model.outputs.map((o) => [o.name, bytesOf(ref[o.name]!)])),
    });
  }
  return out;
}

/** Seeded inputs, several of them. */
export function inputsFor(prep: Prepared, n: number): Record<string, HostTensor>[] {
  return Array.from({ length: n }, (_, i) => randomInputs(prep.model, prep.inputShapes, 1000 + i));
}

/** A `kerf worker` child process; resolves with its pid and address once listening. */
export function spawnWorker(args: string[]): Promise<{ proc: ChildProcess; pid: number; address: string; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [KERF, 'worker', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KERF_TOKEN: TOKEN } });
    let out = '', err = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`worker did not start: ${err}`)); }, 30_000);
    proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        const j = JSON.parse(line) as { address: string };
        resolve({ proc, pid: proc.pid!, address: j.address, port: Number(j.address.split(':').pop()) });
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`worker exited with ${code}: ${err}`)); });
  });
}

/** Kill by PID and wait for the exit. */
export async function killChild(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  process.kill(proc.pid!, signal);
  await exited;
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
