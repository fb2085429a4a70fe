/** The gateway a control verb (`kerf repartition`, `kerf rollout`) talks to, and the token it sends. */
import { kerfError } from '../errors.js';

/** The options both verbs take; `--url` and `--gateway` are the same. */
export const CONTROL_OPTIONS = { gateway: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' } } as const;

export const CONTROL_HELP = `  --gateway URL      the gateway (default: env KERF_URL, else http://127.0.0.1:8000); --url is the same
  --token T          the pipeline's token, which every change needs (default: env KERF_TOKEN;
                     kerf up prints it in its dashboard link)`;

/** The gateway's URL and the token from the options, else KERF_URL / KERF_TOKEN. */
export function controlTarget(v: { gateway?: string; url?: string; token?: string }): { url: string; token?: string } {
  if (v.gateway !== undefined && v.url !== undefined && v.gateway !== v.url) throw kerfError('KERF_ERR_USAGE', '--gateway and --url name the same thing: give one');
  const url = v.gateway ?? v.url ?? process.env.KERF_URL ?? 'http://127.0.0.1:8000';
  const token = v.token ?? (process.env.KERF_TOKEN || undefined);
  return token ? { url, token } : { url };
}
