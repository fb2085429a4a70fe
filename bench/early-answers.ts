/**
 * Early answers (issue 14, item 9): N rounds of multi-MB uploads that a gateway and a profiling
 * agent answer before reading them (413, 401); counts answers against resets, and times a
 * stalled body. Run it with the machine busy (e.g. two `node -e 'for(;;){}'`).
 * Run: npx tsc -p . && node dist/bench/early-answers.js [ROOT] [N]
 * ROOT: a kerf checkout whose dist/ to measure (default this one), to compare an older build.
 */
import * as http from 'node:http';
import { fileURLToPath } from 'node:url';
/* eslint-disable @typescript-eslint/no-explicit-any */
const root = process.argv[2] ?? fileURLToPath(new URL('../..', import.meta.url));
const N = Number(process.argv[3] ?? 40);
const { Gateway } = await import(`${root}/dist/src/serve/index.js`) as any;
const { Agent } = await import(`${root}/dist/src/profile/agent.js`) as any;
const { prepareModel } = await import(`${root}/dist/src/engine/index.js`) as any;
const { parseModel } = await import(`${root}/dist/src/graph/model.js`) as any;
const { tinyNet } = await import(`${root}/dist/test/profile/support.js`) as any;
const prep = await prepareModel(parseModel(tinyNet(), { name: 'tiny', source: 'tiny.onnx' }));
const g = await Gateway.start({ model: prep, pipeline: { cuts: [] }, maxBodyBytes: 1 << 20 });
const agent = await Agent.start({ token: 'tok', port: 0, maxModelBytes: 1 << 20 });
function post(url: string, headers: Record<string, string | number>, send: number, stall = false): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const fin = (v: string): void => { if (!done) { done = true; req.destroy(); resolve(v); } };
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => { res.resume(); res.on('end', () => fin(String(res.statusCode))); res.on('error', (e: any) => fin(e.code)); });
    req.on('error', (e: any) => fin(e.code ?? e.message));
    const chunk = Buffer.alloc(64 * 1024, 7);
    let left = send;
    const pump = (): void => { while (left > 0 && !req.destroyed) { const n = Math.min(left, chunk.length); left -= n; if (!req.write(chunk.subarray(0, n))) { req.once('drain', pump); return; } } if (!stall && !req.destroyed) req.end(); };
    pump();
  });
}
const tally: Record<string, any> = {};
const add = (k: string, v: string): void => { tally[k] ??= {}; tally[k][v] = (tally[k][v] ?? 0) + 1; };
for (let i = 0; i < N; i++) {
  add('gateway 413 (8 MB upload, 1 MB limit)', await post(`${g.url}/v2/models/${g.name}/infer`, { 'content-length': 8 << 20 }, 8 << 20));
  add('gateway declared 99,999,999,999 B', await post(`${g.url}/v2/models/${g.name}/infer`, { 'content-length': '99999999999' }, 8 << 20, true));
  add('agent 401 (8 MB upload)', await post(`${agent.url}/v1/profile`, { 'content-length': 8 << 20 }, 8 << 20));
  add('agent 413 (8 MB chunked)', await post(`${agent.url}/v1/profile`, { authorization: 'Bearer tok', 'transfer-encoding': 'chunked' }, 8 << 20));
}
const t0 = Date.now();
const stalled = await Promise.race([post(`${g.url}/v2/models/${g.name}/infer`, { 'content-length': 5000 }, 100, true), new Promise<string>((r) => setTimeout(() => r('no answer'), 25_000))]);
tally['gateway stalled body (100 of 5000 B)'] = `${stalled} after ${((Date.now() - t0) / 1000).toFixed(1)} s`;
console.log(JSON.stringify(tally, null, 1));
await agent.close();
void g.close(); setTimeout(() => process.exit(0), 100);
