/** The network-namespace harness itself: hosts reach each other, tbf holds a rate, kill and cut work, close leaves nothing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as net_ from 'node:net';
import { TestNet } from '../support/netns.js';

/** Whether a TCP connection to host:port opens within 1 s. */
const reach = (host: string, port: number): Promise<boolean> => new Promise((resolve) => {
  const s = net_.connect(port, host, () => { s.destroy(); resolve(true); });
  s.setTimeout(1000, () => { s.destroy(); resolve(false); });
  s.on('error', () => resolve(false));
});

const run = (net: TestNet, i: number, script: string): Promise<string> => new Promise((resolve, reject) => {
  const p = net.spawn(net.hosts[i]!, process.execPath, ['-e', script]);
  let out = '';
  p.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  p.once('exit', (code) => code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`)));
});

test('netns hosts: TCP between them, egress held by tbf, kill and cut, nothing left after close', async (t) => {
  const net = await TestNet.create(2, { rateMbit: [20, undefined] });
  if (!net) { t.skip('network namespaces unavailable'); return; }
  try {
    const [a, b] = net.hosts as [typeof net.hosts[0], typeof net.hosts[0]];
    // b listens; a sends 2.5 MB: at 20 Mbit/s about 1 s
    const server = net.spawn(b, process.execPath, ['-e', `const s=require('net').createServer(c=>{let n=0,t0=0;c.on('data',d=>{if(!t0)t0=performance.now();n+=d.length});c.on('end',()=>{console.log(JSON.stringify({n,s:(performance.now()-t0)/1e3}));process.exit(0)})}).listen(9000,'${b.ip}',()=>console.log('up'))`]);
    let out = '';
    server.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    while (!out.includes('up')) await new Promise((r) => setTimeout(r, 20));
    await run(net, 0, `const c=require('net').connect(9000,'${b.ip}',()=>{c.end(Buffer.alloc(2_500_000))});c.on('close',()=>process.exit(0))`);
    while (!out.includes('"n"')) await new Promise((r) => setTimeout(r, 20));
    const r = JSON.parse(out.split('\n').find((l) => l.includes('"n"'))!) as { n: number; s: number };
    const mbit = r.n * 8 / r.s / 1e6;
    assert.equal(r.n, 2_500_000);
    assert.ok(mbit > 14 && mbit < 24, `20 Mbit/s tbf measured ${mbit.toFixed(1)}`);
    // a host's death kills everything in it
    const sleeper = net.spawn(a, 'sleep', ['30']);
    const gone = new Promise((res) => sleeper.once('exit', res));
    await new Promise((res) => setTimeout(res, 100));
    assert.ok((await net.pids(a)).length >= 1);
    await net.kill(a);
    await gone;
    assert.deepEqual(await net.pids(a), []);
    // a cut link: b cannot be reached from the root namespace
    // (the server must survive a client that resets right after connecting, as reach() does: an
    // unhandled ECONNRESET on its socket would end it, and the restored host would look unreachable)
    const echo = net.spawn(b, process.execPath, ['-e', `require('net').createServer(c=>{c.on('error',()=>{});c.end('hi')}).listen(9001,'${b.ip}',()=>console.log('up'))`]);
    let echoExit: number | null | undefined;
    echo.once('exit', (code) => { echoExit = code; });
    await new Promise((res) => echo.stdout!.once('data', res));
    assert.equal(await reach(b.ip, 9001), true);
    await net.cut(b);
    assert.equal(await reach(b.ip, 9001), false, 'a cut host is unreachable');
    await net.restore(b);
    // a restored link carries traffic again within 5 s (carrier, bridge port, neighbour discovery)
    let back = false;
    for (const end = Date.now() + 5000; !back && Date.now() < end;) {
      back = await reach(b.ip, 9001);
      if (!back) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(echoExit, undefined, 'the echo server in the restored host is still running');
    assert.ok(back, 'a restored host is reachable again within 5 s');
  } finally {
    await net.close();
  }
  const links = execFileSync('ip', ['-o', 'link']).toString();
  assert.ok(!links.includes(net.bridge), 'bridge removed');
  assert.ok(!execFileSync('ip', ['netns', 'list']).toString().includes(net.hosts[0]!.ns), 'namespaces removed');
});

test('netns hosts: a run-unique name prefix is used, a bad one refused naming it', async (t) => {
  const net = await TestNet.create(1, { prefix: 'kfo' });
  if (!net) { t.skip('network namespaces unavailable'); return; }
  try {
    assert.match(net.hosts[0]!.ns, new RegExp(`^kfo-${process.pid.toString(36)}[0-9a-z]+-0$`));
    assert.ok(execFileSync('ip', ['netns', 'list']).toString().includes(net.hosts[0]!.ns));
  } finally {
    await net.close();
  }
  assert.ok(!execFileSync('ip', ['netns', 'list']).toString().includes(net.hosts[0]!.ns), 'namespace removed');
  await assert.rejects(TestNet.create(1, { prefix: 'bad name' }), /prefix 'bad name'/);
});
