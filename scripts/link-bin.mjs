// `npx kerf` in a clone of this repository must run this project's CLI. npm 11 resolves a root project's own
// "bin" by installing the project into its npx cache, which fails for this package; so package.json
// declares no "bin" and this script links node_modules/.bin/kerf to bin/kerf.js on every install.
import { mkdirSync, symlinkSync, rmSync, lstatSync, chmodSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const binDir = join(root, 'node_modules', '.bin');
const link = join(binDir, 'kerf');
const target = join(root, 'bin', 'kerf.js');
mkdirSync(binDir, { recursive: true });
try { lstatSync(link); rmSync(link); } catch { /* absent */ }
symlinkSync(relative(binDir, target), link);
chmodSync(target, 0o755);
