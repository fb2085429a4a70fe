/**
 * Serving across hosts vs the same plan on one machine with emulated links: now the
 * `kerf bench hosts` verb (src/cli/bench/hosts.ts); this script runs it with the same flags.
 *
 *   flock /tmp/kerf-heavy.lock node dist/bench/hosts.js [--requests 60] [--rounds 3] [--mbit 100]
 */
import { run } from '../src/cli/bench/hosts.js';

process.exitCode = (await run(process.argv.slice(2))) ?? 0;
