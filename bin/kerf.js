#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  // A fresh clone: npm installs without running scripts (.npmrc), so the first run compiles.
  const root = fileURLToPath(new URL('..', import.meta.url));
  process.stderr.write(`kerf: ${root}dist is not built yet; compiling it once (npm run build)…\n`);
  const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || !existsSync(main)) {
    process.stderr.write(`kerf: the build failed (${r.error?.message ?? `exit ${r.status}`}); run \`npm run build\` in ${root} to see why\n`);
    process.exit(1);
  }
}
const { main: run } = await import(main.href);
run(process.argv.slice(2));
