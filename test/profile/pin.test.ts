/** profile --cpus pins its threads to one CPU for the runs under the quota, and gives the affinity back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { pinToOneCpu } from '../../src/profile/profile.js';

const allowed = (): string[] => readdirSync('/proc/self/task').map((t) => /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/self/task/${t}/status`, 'utf8'))?.[1] ?? '?');
const canPin = process.platform === 'linux' && spawnSync('taskset', ['-p', String(process.pid)]).status === 0;

test('pinToOneCpu: every thread on the last CPU it may use, then back as it was', { skip: canPin ? false : 'no taskset here' }, () => {
  const before = allowed();
  const last = before[0]!.split(',').pop()!.split('-').pop()!;
  const restore = pinToOneCpu(process.pid);
  assert.ok(restore, 'pinned');
  try {
    assert.deepEqual([...new Set(allowed())], [last]);
  } finally {
    restore();
  }
  assert.deepEqual(allowed(), before);
});
