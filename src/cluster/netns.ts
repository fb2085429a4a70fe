/**
 * Hosts as network namespaces (for the tests and for `kerf bench … --hosts netns`): N namespaces, each with a veth pair whose other end is on a
 * bridge in the root namespace (which gets the subnet's .254, so the test process reaches every
 * host), real kernel TCP between them, optional per-host egress rate (`tc … tbf`; netem is not
 * in this kernel). Names carry the pid and the subnet is derived from it, so parallel runs never
 * collide. `kill(host)` kills every pid of `ip netns pids NS` (a host's death), `cut(host)` sets
 * its link down. `close()` removes everything, and so does process exit.
 *
 *   const net = await TestNet.create(3, { rateMbit: [50, 20, undefined] });  // null: skipped (printed)
 *   const net = await TestNet.create(3, { prefix: 'kbf' });   // namespaces kbf-<pid><n>-<i>
 *   const p = net.spawn(net.hosts[0], process.execPath, [KERF, 'agent', …]);
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface NetHost {
  name: string;
  /** namespace name */
  ns: string;
  /** the host's address on the test subnet */
  ip: string;
  /** interface inside the namespace (eth0) and its bridge-side peer in the root namespace */
  dev: string;
  peer: string;
  /** egress rate, Mbit/s (undefined: unlimited) */
  rateMbit?: number;
}

export interface TestNetOptions {
  /** per host egress rate, Mbit/s (undefined: unlimited) */
  rateMbit?: (number | undefined)[];
  /** host names (default h0, h1, …) */
  names?: string[];
  /** namespace name prefix (default 'kerf'; letters, digits, '-', at most 12): names are
   *  `<prefix>-<pid><n>-<i>`, so they are unique to the process and the run */
  prefix?: string;
  /** where the visible skip line goes (default stdout, as '# SKIP: …' for node:test) */
  skipLine?: (why: string) => void;
}

function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => err ? reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout));
  });
}

/** Why namespaces cannot be made here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => existsSync(p))) return "the 'ip' command (iproute2) is absent";
  return null;
}

let seq = 0;
const live = new Set<TestNet>();
let hooked = false;

export class TestNet {
  readonly hosts: NetHost[];
  readonly bridge: string;
  /** the root namespace's address on the bridge (the test process, as a controller) */
  readonly gateway: string;
  readonly subnet: string;
  private closed = false;
  private readonly children = new Set<ChildProcess>();

  private constructor(bridge: string, subnet: string, hosts: NetHost[]) {
    this.bridge = bridge;
    this.subnet = subnet;
    this.gateway = `${subnet}.254`;
    this.hosts = hosts;
  }

  /** Make `n` hosts; null (after a visible `# SKIP` line) where namespaces cannot be made. */
  static async create(n: number, o: TestNetOptions = {}): Promise<TestNet | null> {
    const why = netnsUnavailable();
    if (why) { if (o.skipLine) o.skipLine(why); else process.stdout.write(`# SKIP: ${why}\n`); return null; }
    if (n < 1 || n > 200) throw new Error(`TestNet: ${n} hosts (1..200)`);
    const prefix = o.prefix ?? 'kerf';
    if (!/^[a-z0-9][a-z0-9-]{0,11}$/i.test(prefix)) throw new Error(`TestNet: prefix '${prefix}' (letters, digits, '-', at most 12)`);
    const id = `${process.pid.toString(36)}${(seq++).toString(36)}`;
    // 10.A.B.0/24 from the pid and a counter: distinct between parallel runs and within one; a
    // subnet some address or route of the root namespace already uses (another run's) is passed over.
    const used = await ip(['-4', '-o', 'route', 'show', 'table', 'all']).catch(() => '');
    let k = (process.pid * 7 + seq * 131) % 37500;
    let subnet = '';
    for (let tries = 0; tries < 1000; tries++, k = (k + 9973) % 37500) {
      subnet = `10.${100 + Math.floor(k / 250)}.${k % 250}`;
      if (!used.includes(`${subnet}.`)) break;
    }
    const bridge = `kb${id}`;
    const hosts: NetHost[] = Array.from({ length: n }, (_, i) => ({
      name: o.names?.[i] ?? `h${i}`, ns: `${prefix}-${id}-${i}`, ip: `${subnet}.${i + 1}`, dev: 'eth0', peer: `kv${id}x${i}`,
      ...(o.rateMbit?.[i] !== undefined ? { rateMbit: o.rateMbit[i]! } : {}),
    }));
    const net = new TestNet(bridge, subnet, hosts);
    live.add(net);
    if (!hooked) {
      hooked = true;
      process.once('exit', () => { for (const t of live) t.closeSync(); });
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { for (const t of live) t.closeSync(); process.exit(130); });
    }
    try {
      await ip(['link', 'add', bridge, 'type', 'bridge']);
      await ip(['addr', 'add', `${net.gateway}/24`, 'dev', bridge]);
      await ip(['link', 'set', bridge, 'up']);
      for (const h of hosts) {
        await ip(['netns', 'add', h.ns]);
        const tmp = `kv${id}y${hosts.indexOf(h)}`;
        await ip(['link', 'add', h.peer, 'type', 'veth', 'peer', 'name', tmp]);
        await ip(['link', 'set', tmp, 'netns', h.ns]);
        await ip(['-n', h.ns, 'link', 'set', tmp, 'name', h.dev]);
        await ip(['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', h.dev]);
        await ip(['-n', h.ns, 'link', 'set', h.dev, 'up']);
        await ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
        await ip(['link', 'set', h.peer, 'master', bridge]);
        await ip(['link', 'set', h.peer, 'up']);
        if (h.rateMbit !== undefined) await net.setRate(h, h.rateMbit);
      }
    } catch (e) {
      await net.close();
      throw e;
    }
    return net;
  }

  host(name: string): NetHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`TestNet: no host '${name}'`);
    return h;
  }

  /** Hold a host's egress to `mbit` Mbit/s (null: unlimited). */
  async setRate(h: NetHost, mbit: number | null): Promise<void> {
    await ip(['netns', 'exec', h.ns, 'tc', 'qdisc', 'del', 'dev', h.dev, 'root']).catch(() => {});
    if (mbit === null) { delete h.rateMbit; return; }
    // burst: a few ms of the rate (at least 4 KB), so short transfers are not rounded up by it
    const burst = Math.max(4096, Math.round((mbit * 1e6 / 8) * 0.004));
    await ip(['netns', 'exec', h.ns, 'tc', 'qdisc', 'add', 'dev', h.dev, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '400ms']);
    h.rateMbit = mbit;
  }

  /** Start a process inside a host (`ip netns exec`); it is killed on close. */
  spawn(h: NetHost, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.closed) throw new Error('TestNet: closed');
    const p = spawn('ip', ['netns', 'exec', h.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.children.add(p);
    p.once('exit', () => this.children.delete(p));
    return p;
  }

  /** Pids of every process inside a host. */
  async pids(h: NetHost): Promise<number[]> {
    const out = await ip(['netns', 'pids', h.ns]).catch(() => '');
    return out.split('\n').map((s) => Number(s.trim())).filter((x) => Number.isInteger(x) && x > 0);
  }

  /** A host's death: SIGKILL every process in its namespace. */
  async kill(h: NetHost): Promise<number[]> {
    const pids = await this.pids(h);
    for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ } }
    return pids;
  }

  /** Cut a host's link (its interface down), or restore it. */
  async cut(h: NetHost): Promise<void> { await ip(['-n', h.ns, 'link', 'set', h.dev, 'down']); }
  async restore(h: NetHost): Promise<void> {
    await ip(['-n', h.ns, 'link', 'set', h.dev, 'up']);
    // the veth's carrier and the bridge port come up a moment later; a neighbour entry left FAILED by
    // traffic during the cut is flushed so the first packet after the restore asks again
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const state = await ip(['-o', 'link', 'show', 'dev', h.peer]).catch(() => '');
      if (/state UP/.test(state)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await ip(['neigh', 'flush', 'to', h.ip]).catch(() => {});
  }

  /** Kill every process in the hosts and remove namespaces, veths and the bridge. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    for (const h of this.hosts) await this.kill(h);
    for (const c of this.children) c.kill('SIGKILL');
    for (const h of this.hosts) {
      await ip(['link', 'del', h.peer]).catch(() => {});
      await ip(['netns', 'del', h.ns]).catch(() => {});
    }
    await ip(['link', 'del', this.bridge]).catch(() => {});
  }

  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    const run = (args: string[]): string => { try { return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString(); } catch { return ''; } };
    for (const h of this.hosts) {
      for (const p of run(['netns', 'pids', h.ns]).split('\n').map(Number).filter((x) => x > 0)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
      run(['link', 'del', h.peer]);
      run(['netns', 'del', h.ns]);
    }
    run(['link', 'del', this.bridge]);
  }
}
