/**
 * The browser side's files: uPlot from its npm package, kerf's page scripts compiled by
 * src/ui/web/tsconfig.json (npm's build/prepare), and the style sheet. Read once, from disk
 * beside the package: nothing is fetched from anywhere at run time.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../errors.js';
import { STYLE } from './style.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export type AssetName = 'uplot.js' | 'uplot.css' | 'kerf.css' | 'common.js' | 'dashboard.js' | 'report.js';
export const ASSET_NAMES: readonly AssetName[] = ['uplot.js', 'uplot.css', 'kerf.css', 'common.js', 'dashboard.js', 'report.js'];

function pathOf(name: AssetName): string {
  switch (name) {
    case 'uplot.js': return require.resolve('uplot/dist/uPlot.iife.min.js');
    case 'uplot.css': return require.resolve('uplot/dist/uPlot.min.css');
    default: return resolve(here, 'web', name);
  }
}

const cache = new Map<AssetName, Promise<string>>();

/** The text of one asset (cached). Throws KERF_ERR_FILE when the page scripts were not built. */
export function asset(name: AssetName): Promise<string> {
  let p = cache.get(name);
  if (!p) {
    p = name === 'kerf.css' ? Promise.resolve(STYLE) : readFile(pathOf(name), 'utf8').catch((e: NodeJS.ErrnoException) => {
      cache.delete(name);
      throw kerfError('KERF_ERR_FILE', `dashboard asset ${name} is missing at ${pathOf(name)} (${e.code ?? e.message}): build the page scripts with \`npm run build\``);
    });
    cache.set(name, p);
  }
  return p;
}

export const contentType = (name: string): string => name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside a <script type="application/json"> element (no `</script>`, no `<!--`). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
