import { parseDocument } from 'yaml';
import { kerfError } from '../errors.js';
import { networkFromObject, parseNetworkCsv } from './network.js';
import type { Network } from './types.js';

/*
 * YAML network files live apart from network.ts so that Scission's CSV path (kerf scission)
 * never loads the YAML parser, a third of that command's start-up time.
 */

/** kerf's network file as YAML or JSON text; see {@link networkFromObject}. */
export function parseNetworkYaml(text: string, source = 'network.yaml'): Network {
  let doc: unknown;
  const bad = (m: string): never => { throw kerfError('KERF_ERR_NETWORK_FILE', `${source}: not valid YAML: ${m.split('\n')[0]}`); };
  try {
    // an unknown tag (`!foo`) or directive (`%x`) is refused, not read as a plain string with a
    // warning on stderr: a value the file did not mean must not pass (found by test/fuzz)
    const d = parseDocument(text, { logLevel: 'silent', prettyErrors: false });
    if (d.errors.length) bad(d.errors[0]!.message);
    if (d.warnings.length) bad(d.warnings[0]!.message);
    doc = d.toJS();
  } catch (e) {
    if ((e as { code?: string }).code === 'KERF_ERR_NETWORK_FILE') throw e;
    bad((e as Error).message);
  }
  return networkFromObject(doc, source);
}

/** Pick the parser by file name: `.csv` is Scission's format, anything else YAML/JSON. */
export function parseNetwork(text: string, fileName: string): Network {
  return /\.csv$/i.test(fileName) ? parseNetworkCsv(text, fileName) : parseNetworkYaml(text, fileName);
}
