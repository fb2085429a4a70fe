/**
 * `npm run bench:pipeline`: N-stage pipelines under CPU quotas vs the placement (same as `kerf bench pipeline`);
 * arguments after `--` are passed through, e.g. `npm run bench:pipeline -- --stages 1,4 --seconds 8`.
 */
import { reportError } from '../src/cli/main.js';
import { run } from '../src/cli/bench/pipeline.js';

try {
  const code = await run(process.argv.slice(2));
  if (typeof code === 'number') process.exitCode = code;
} catch (e) {
  process.exitCode = reportError(e);
}
