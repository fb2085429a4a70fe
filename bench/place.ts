/**
 * `npm run bench:place`: the cluster placement benchmark (same as `kerf bench place`);
 * arguments after `--` are passed through, e.g. `npm run bench:place -- --trials 10`.
 */
import { reportError } from '../src/cli/main.js';
import { run } from '../src/cli/bench/place.js';

try {
  const code = await run(process.argv.slice(2));
  if (typeof code === 'number') process.exitCode = code;
} catch (e) {
  process.exitCode = reportError(e);
}
