import { kerfError } from '../errors.js';
import { parse } from './args.js';

const HELP = `usage: kerf operator --image IMG [--namespace NS] [--kubeconfig FILE] [--listen HOST:PORT]

The KerfPipeline operator (docs/kubernetes.md): watches KerfPipelines, Nodes and what it owns in
one namespace, places each pipeline with kerf's placement, brings up a pinned Deployment and a
Service per stage and the gateway, re-places at once when a node is lost, rolls out new model
versions beside the old, and writes status. Two replicas elect a leader with a Lease.

options:
  --image IMG          the kerf image of the pods it creates (a KerfPipeline's spec.image wins)
  --namespace NS       the namespace it manages (default: env POD_NAMESPACE, else default)
  --kubeconfig FILE    a kubeconfig (default: in-cluster when run in a pod, else ~/.kube/config)
  --listen HOST:PORT   serve /healthz, /readyz and /metrics (default 0.0.0.0:8080 in a pod; off otherwise)
  --lease-seconds S    lease duration (default 15)
  --resync-seconds S   reconcile everything this often even without changes (default 30)
  --parts-url URL      where pods reach this operator's parts service (served on --listen; default
                       in a pod http://kerf-operator.NS.svc:8080); 'none': stages cut their part
                       out of the whole model in their init container
  --parts-dir DIR      where models and parts are cached (default: under the temp dir)
  --measure-every S    have the agents (env KERF_AGENT_TOKEN: their token) measure the links between
                       their nodes at start, when a node's agent is new, and every S s (default 600)
  --measure-seconds S  seconds per direction per pair (default 1)
`;

const OPTIONS = {
  image: { type: 'string' }, namespace: { type: 'string' }, kubeconfig: { type: 'string' }, listen: { type: 'string' },
  'lease-seconds': { type: 'string' }, 'resync-seconds': { type: 'string' }, 'parts-url': { type: 'string' }, 'parts-dir': { type: 'string' },
  'measure-every': { type: 'string' }, 'measure-seconds': { type: 'string' },
} as const;

function seconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n >= 1)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected a number of seconds ≥ 1`);
  return n;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  if (!v.image) throw kerfError('KERF_ERR_USAGE', `--image is required\n${HELP}`);
  const { Operator } = await import('../k8s/operator.js');
  const inPod = !!process.env.KUBERNETES_SERVICE_HOST;
  const listen = v.listen ?? (inPod ? '0.0.0.0:8080' : undefined);
  const lease = seconds(v['lease-seconds'], '--lease-seconds');
  const resync = seconds(v['resync-seconds'], '--resync-seconds');
  const namespace = v.namespace ?? process.env.POD_NAMESPACE ?? 'default';
  const partsUrl = v['parts-url'] === 'none' ? undefined : v['parts-url'] ?? (inPod && listen ? `http://kerf-operator.${namespace}.svc:${listen.split(':').pop()}` : undefined);
  if (partsUrl && !/^https?:\/\/[^\s/]+$/.test(partsUrl)) throw kerfError('KERF_ERR_USAGE', `--parts-url '${partsUrl}': expected http(s)://HOST[:PORT] (no path)`);
  const every = seconds(v['measure-every'], '--measure-every');
  const ms = v['measure-seconds'] !== undefined ? Number(v['measure-seconds']) : undefined;
  if (ms !== undefined && !(ms > 0 && ms <= 30)) throw kerfError('KERF_ERR_USAGE', `--measure-seconds '${v['measure-seconds']}': expected 0 < S ≤ 30`);
  const agentToken = process.env.KERF_AGENT_TOKEN;
  const op = await Operator.start({
    ...(agentToken ? { agentToken, measure: { ...(every ? { everyS: every } : {}), ...(ms ? { seconds: ms } : {}) } } : {}),
    namespace, image: v.image, ...(partsUrl ? { partsUrl } : {}), ...(v['parts-dir'] ? { partsDir: v['parts-dir'] } : {}),
    ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}), ...(listen ? { listen } : {}),
    ...(lease ? { leaseDurationS: lease } : {}), ...(resync ? { resyncS: resync } : {}),
  });
  process.stdout.write(JSON.stringify({ event: 'started', identity: op.identity, leader: op.leader, health: op.address }) + '\n');
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
  await op.close();
  return 0;
}
