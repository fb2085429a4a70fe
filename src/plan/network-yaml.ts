import { parse as parseYaml } from 'yaml';
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
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw kerfError('KERF_ERR_NETWORK_FILE', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return networkFromObject(doc, source);
}

/** Pick the parser by file name: `.csv` is Scission's format, anything else YAML/JSON. */
export function parseNetwork(text: string, fileName: string): Network {
  return /\.csv$/i.test(fileName) ? parseNetworkCsv(text, fileName) : parseNetworkYaml(text, fileName);
}
