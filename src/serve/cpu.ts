/**
 * CPU limits for the processes of a pipeline on one machine: each worker stands for an edge
 * node with a fraction of a core, so it is held to that share with a cgroup v1 CFS quota
 * (`cpu.cfs_quota_us` / `cpu.cfs_period_us`), which throttles a process exactly. Groups are
 * named `kerf-<owner pid>-<label>` under the cpu hierarchy, so groups left by an owner that
 * died (SIGKILL) can be recognised and swept by the next one.
 *
 * Memory limits (`MemoryGroup`, what `kerf agent --memory-mb` holds its stages to): a cgroup v1
 * memory group with `memory.limit_in_bytes`, nested in the memory group the owner runs in (so
 * whatever limits the owner's own group has still hold), named the same way.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kerfError } from '../errors.js';

/** Where the cgroup v1 cpu controller is mounted on most Linux systems. */
export const CGROUP_CPU_ROOT = '/sys/fs/cgroup/cpu';
/** Default CFS period: the kernel's own default, 100 ms. */
export const DEFAULT_CPU_PERIOD_US = 100_000;
/** The kernel refuses quotas below 1 ms. */
const MIN_QUOTA_US = 1000;
const NAME = /^kerf-(\d+)-[A-Za-z0-9_.-]+$/;

/** Whether CPU quotas can be set under `root`: null when they can, else why not. */
export function cpuQuotaUnavailable(root = CGROUP_CPU_ROOT): string | null {
  return controllerUnavailable(root, 'cpu', 'cpu.cfs_quota_us');
}

/** Whether the cgroup v1 `controller` can be written at `dir` (`file` is one of its knobs): null when it can, else why not. */
function controllerUnavailable(dir: string, controller: string, file: string): string | null {
  if (process.platform !== 'linux') return `cgroups need Linux (this is ${process.platform})`;
  if (!existsSync(join(dir, file))) return `no cgroup v1 ${controller} controller at ${dir}`;
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    return `${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  return null;
}

/** Move process `pid` into the cgroup at `path` (its cgroup.procs), unless the group was removed. */
async function addProcess(path: string, removed: boolean, pid: number): Promise<void> {
  if (removed) throw kerfError('KERF_ERR_CLOSED', `${path}: the group was removed`);
  try {
    await writeFile(join(path, 'cgroup.procs'), String(pid));
  } catch (e) {
    throw kerfError('KERF_ERR_CONFIG', `${path}: cannot add process ${pid} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Turn a label into a safe cgroup directory suffix. */
function safe(label: string): string {
  const s = label.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+/, '');
  return s.slice(0, 64) || 'x';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A cgroup holding processes to `cpus` cores. Create with `CpuGroup.create`; `remove()` is
 * idempotent and waits (bounded) for the group's processes to leave it.
 */
export class CpuGroup {
  private removed: Promise<void> | null = null;
  private readonly pids: number[] = [];

  private constructor(readonly path: string, readonly cpus: number, readonly periodUs: number, readonly quotaUs: number) {}

  /** Make `<root>/kerf-<owner>-<label>` with a quota of `cpus` × period. */
  static async create(label: string, cpus: number, opts: { root?: string; periodUs?: number; owner?: number } = {}): Promise<CpuGroup> {
    if (!(cpus > 0) || !Number.isFinite(cpus)) throw kerfError('KERF_ERR_USAGE', `CPU share of '${label}' must be a positive number of cores (got ${cpus})`);
    const root = opts.root ?? CGROUP_CPU_ROOT;
    const periodUs = Math.round(opts.periodUs ?? DEFAULT_CPU_PERIOD_US);
    if (!(periodUs >= 1000 && periodUs <= 1_000_000)) throw kerfError('KERF_ERR_USAGE', `CPU period ${periodUs} µs: expected 1000..1000000`);
    const quotaUs = Math.max(MIN_QUOTA_US, Math.round(cpus * periodUs));
    const path = join(root, `kerf-${opts.owner ?? process.pid}-${safe(label)}`);
    await mkdir(path);
    try {
      await writeFile(join(path, 'cpu.cfs_period_us'), String(periodUs));
      await writeFile(join(path, 'cpu.cfs_quota_us'), String(quotaUs));
    } catch (e) {
      await rmdir(path).catch(() => {});
      throw kerfError('KERF_ERR_CONFIG', `${path}: cannot set the CPU quota (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return new CpuGroup(path, cpus, periodUs, quotaUs);
  }

  /** Move a process (all its threads, and the children it starts later) into the group. */
  async add(pid: number): Promise<void> {
    await addProcess(this.path, this.removed !== null, pid);
    this.pids.push(pid);
  }

  /** Process ids now in the group. */
  async procs(): Promise<number[]> {
    try {
      return (await readFile(join(this.path, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** The kernel's throttling counters: periods, periods throttled, seconds throttled. */
  async stat(): Promise<{ periods: number; throttled: number; throttledS: number }> {
    const text = await readFile(join(this.path, 'cpu.stat'), 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { periods: get('nr_periods'), throttled: get('nr_throttled'), throttledS: get('throttled_time') / 1e9 };
  }

  /** Remove the group once its processes are gone (they should have exited; waits up to `waitMs`). */
  remove(waitMs = 5000): Promise<void> {
    if (!this.removed) {
      this.removed = (async () => {
        const until = performance.now() + waitMs;
        for (;;) {
          try {
            await rmdir(this.path);
            return;
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            if (code === 'ENOENT') return;
            // EBUSY: a process (or a zombie not yet reaped) is still inside.
            if (code !== 'EBUSY' || performance.now() > until) {
              throw kerfError('KERF_ERR_CONFIG', `${this.path}: cannot remove the cgroup (${code ?? (e as Error).message}); processes inside: ${(await this.procs()).join(', ') || 'none'}`);
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      })();
    }
    return this.removed;
  }
}

/**
 * Remove `kerf-<pid>-*` groups under `root` whose owner is no longer alive and that hold no
 * process: what an owner killed with SIGKILL left behind. Returns the paths removed.
 */
export function sweepStaleCpuGroups(root = CGROUP_CPU_ROOT): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const path = join(root, name);
    try {
      if (readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() !== '') continue;
      rmdirSync(path);
      removed.push(path);
    } catch {
      // busy or gone: leave it
    }
  }
  return removed;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; null when gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU seconds the live threads of a process have run, from each thread's scheduler statistics
 * (/proc/<pid>/task/<tid>/schedstat, nanoseconds; a thread that ended no longer counts): fine
 * enough to time one request, where /proc/<pid>/stat counts 10 ms ticks. Null when the process
 * is gone or the kernel keeps no scheduler statistics.
 */
export function processThreadsCpuSeconds(pid: number): number | null {
  let tids: string[];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return null; }
  let ns = 0, read = 0;
  for (const tid of tids) {
    try {
      const v = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(v)) { ns += v; read++; }
    } catch { /* the thread ended */ }
  }
  return read > 0 ? ns / 1e9 : null;
}

/** Resident memory of a process (VmRSS) and its peak (VmHWM), bytes; null when gone. */
export function processMemory(pid: number): { rss: number; peak: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * CFS period for a CPU share: short (10 ms) so throttling is fine-grained — with the kernel's
 * 100 ms, a 1 ms block at 10% either runs at once or waits 90 ms — but long enough that the
 * quota stays above the kernel's 1 ms minimum.
 */
export function cpuPeriodForShare(share: number): number {
  return Math.max(10_000, Math.ceil(1000 / share));
}

/** The cpu cgroup this process is in now, as a path under `root` (from /proc/self/cgroup). */
export function currentCpuGroup(root = CGROUP_CPU_ROOT): string {
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers?.split(',').includes('cpu') && path !== undefined) return join(root, path);
    }
  } catch {
    // not Linux, or no cgroup v1: the root
  }
  return root;
}

/** Move process `pid` (all its threads) into the cgroup at `path` (e.g. back where it was). */
export async function moveToCpuGroup(path: string, pid: number): Promise<void> {
  try {
    await writeFile(join(path, 'cgroup.procs'), String(pid));
  } catch (e) {
    throw kerfError('KERF_ERR_CONFIG', `${path}: cannot move process ${pid} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Where the cgroup v1 memory controller is mounted on most Linux systems. */
export const CGROUP_MEMORY_ROOT = '/sys/fs/cgroup/memory';
const PAGE = 4096;

/** The `controller` cgroup process `pid` (default: this one) is in, as a path under `root`; null when unknown. */
export function cgroupOf(controller: string, root: string, pid: number | 'self' = 'self'): string | null {
  try {
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers?.split(',').includes(controller) && path !== undefined) return join(root, path);
    }
  } catch {
    // gone, not Linux, or no cgroup v1
  }
  return null;
}

/** The memory group this process runs in (where its own memory groups are made). */
export function currentMemoryGroup(root = CGROUP_MEMORY_ROOT): string {
  return cgroupOf('memory', root) ?? root;
}

/** Whether memory limits can be set under `dir` (a memory group): null when they can, else why not. */
export function memoryLimitUnavailable(dir = currentMemoryGroup()): string | null {
  return controllerUnavailable(dir, 'memory', 'memory.limit_in_bytes');
}

/** A memory group's kernel counters. */
export interface MemoryGroupStat {
  /** memory charged to the group now, and its peak, bytes */
  usageBytes: number;
  maxUsageBytes: number;
  /** times the limit was hit */
  failcnt: number;
  /** processes of the group the kernel's OOM killer ended */
  oomKills: number;
}

/**
 * A cgroup holding its processes together to `limitBytes` of memory (`memory.limit_in_bytes`,
 * and `memory.memsw.limit_in_bytes` where swap is accounted, so swapping does not get around
 * it). Beyond the limit the kernel reclaims, then kills a process of the group. Create with
 * `MemoryGroup.create`; `remove()` is idempotent and waits (bounded) for its processes to leave.
 */
export class MemoryGroup {
  private removed: Promise<void> | null = null;

  private constructor(readonly path: string, readonly limitBytes: number) {}

  /** Make `<parent>/kerf-<owner>-<label>` (parent: the memory group this process is in) limited to `limitBytes` (rounded down to a page). */
  static async create(label: string, limitBytes: number, opts: { parent?: string; owner?: number } = {}): Promise<MemoryGroup> {
    if (!(limitBytes >= PAGE) || !Number.isFinite(limitBytes)) throw kerfError('KERF_ERR_USAGE', `memory limit of '${label}' must be at least ${PAGE} bytes (got ${limitBytes})`);
    const parent = opts.parent ?? currentMemoryGroup();
    const bytes = Math.floor(limitBytes / PAGE) * PAGE;
    const path = join(parent, `kerf-${opts.owner ?? process.pid}-${safe(label)}`);
    await mkdir(path);
    try {
      await writeFile(join(path, 'memory.limit_in_bytes'), String(bytes));
      if (existsSync(join(path, 'memory.memsw.limit_in_bytes'))) await writeFile(join(path, 'memory.memsw.limit_in_bytes'), String(bytes));
    } catch (e) {
      await rmdir(path).catch(() => {});
      throw kerfError('KERF_ERR_CONFIG', `${path}: cannot set the memory limit (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return new MemoryGroup(path, bytes);
  }

  /** Move a process (and the children it starts later) into the group. */
  async add(pid: number): Promise<void> {
    await addProcess(this.path, this.removed !== null, pid);
  }

  /** Process ids now in the group. */
  async procs(): Promise<number[]> {
    try {
      return (await readFile(join(this.path, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** The kernel's counters (zeros once the group is gone). */
  stat(): MemoryGroupStat {
    const num = (f: string): number => { try { return Number(readFileSync(join(this.path, f), 'utf8').trim()) || 0; } catch { return 0; } };
    let oomKills = 0;
    try { oomKills = Number(/^oom_kill (\d+)/m.exec(readFileSync(join(this.path, 'memory.oom_control'), 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
    return { usageBytes: num('memory.usage_in_bytes'), maxUsageBytes: num('memory.max_usage_in_bytes'), failcnt: num('memory.failcnt'), oomKills };
  }

  /** Remove the group once its processes are gone (waits up to `waitMs`; what they were charged returns to the parent). */
  remove(waitMs = 5000): Promise<void> {
    this.removed ??= removeGroup(this.path, waitMs, () => this.procs());
    return this.removed;
  }
}

async function removeGroup(path: string, waitMs: number, procs: () => Promise<number[]>): Promise<void> {
  const until = performance.now() + waitMs;
  for (;;) {
    try {
      await rmdir(path);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || performance.now() > until) {
        throw kerfError('KERF_ERR_CONFIG', `${path}: cannot remove the cgroup (${code ?? (e as Error).message}); processes inside: ${(await procs()).join(', ') || 'none'}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
