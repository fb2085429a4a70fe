#!/usr/bin/env node
// `npm run test:loaded [-- --runs N] [-- --burners K] [-- FILE…]`: the test suite (`npm test`) with
// the machine's cores kept busy by K other processes (default 2: both cores of the reference
// machine), as users and CI run it. Starts K CPU burners (node processes spinning), runs `npm test`
// N times in a row (default 1, stopping at the first failure), kills the burners by PID, and exits
// with the tests' code. With FILEs (built tests, e.g. dist/test/adapt/live.test.js) it runs
// `node --test --test-concurrency=2 FILE…` instead of the whole suite, to re-check a few files.
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 0) { process.stderr.write(`test:loaded: ${name} needs a whole number, got '${args[i + 1]}'\n`); process.exit(2); }
  return v;
};
const runs = Math.max(1, opt('--runs', 1));
const files = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && (args[i - 1] === '--runs' || args[i - 1] === '--burners')));
const burnerCount = opt('--burners', 2);

const burners = [];
const stopBurners = () => {
  for (const b of burners.splice(0)) { try { process.kill(b.pid, 'SIGKILL'); } catch { /* already gone */ } }
};
// Each burner spins, and every 100 ms checks that this process (its parent) still lives, so it
// ends with it even when this process is killed with SIGKILL and cannot stop it.
const BURN = `const p = ${process.pid}; for (;;) { const t = Date.now(); while (Date.now() - t < 100); try { process.kill(p, 0); } catch { process.exit(0); } if (process.ppid !== p) process.exit(0); }`;
for (let i = 0; i < burnerCount; i++) {
  const b = spawn(process.execPath, ['-e', BURN], { stdio: 'ignore' });
  burners.push(b);
}
process.stdout.write(`test:loaded: ${burnerCount} CPU burners running (pids ${burners.map((b) => b.pid).join(', ')}), ${runs} run(s) of ${files.length ? files.join(' ') : 'npm test'}\n`);

let child = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    stopBurners();
    // npm test runs in its own process group: signal all of it (npm, the shell, node --test and
    // the test files), or the tests would run on without the burners.
    if (child?.pid) { try { process.kill(-child.pid, sig); } catch { /* gone */ } }
    process.exit(130);
  });
}
process.on('exit', stopBurners);

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let code = 0;
for (let r = 1; r <= runs; r++) {
  const t0 = Date.now();
  code = await new Promise((resolve) => {
    child = files.length
      ? spawn(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit', detached: true })
      : spawn(npm, ['test'], { stdio: 'inherit', detached: true });
    child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0)));
    child.on('error', () => resolve(1));
  });
  child = null;
  process.stdout.write(`test:loaded: run ${r}/${runs} exited ${code} after ${((Date.now() - t0) / 1000).toFixed(0)} s under ${burnerCount} burners\n`);
  if (code !== 0) break;
}
stopBurners();
process.exit(code);
