/**
 * A fake Kubernetes API server for tests: plain HTTP on 127.0.0.1, speaking only the small part
 * of the API the kerf operator uses — discovery of the resources below, list (label selectors
 * of the a=b form) and watch from a resourceVersion (ERROR 410 Gone for one older than the
 * last compaction, as a real server answers "too old resource version"), get, create, replace
 * (409 on a stale resourceVersion), server-side apply (application/apply-patch+yaml, which
 * needs a fieldManager, recorded in managedFields), JSON merge patch, the status subresource,
 * delete. It is no API server: no admission, no defaulting, no garbage collector, no
 * controllers. Tests move the world with `put()` (what a controller or kubelet would do).
 */
import * as http from 'node:http';

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; generation?: number; labels?: Record<string, string>; managedFields?: unknown[]; [k: string]: unknown } };

interface Resource { group: string; version: string; plural: string; kind: string; namespaced: boolean; status?: boolean }

const RESOURCES: Resource[] = [
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, status: true },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, status: true },
  { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true, status: true },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true, status: true },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  { group: 'kerf.dev', version: 'v1alpha1', plural: 'kerfpipelines', kind: 'KerfPipeline', namespaced: true, status: true },
];

export interface LoggedRequest { method: string; path: string; query: Record<string, string>; contentType?: string; user?: string; status: number }

interface WatchConn { res: http.ServerResponse; res0: Resource; ns: string | null; selector: Record<string, string> }

const apiVersionOf = (r: Resource): string => (r.group ? `${r.group}/${r.version}` : r.version);

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class FakeApiServer {
  readonly log: LoggedRequest[] = [];
  private readonly store = new Map<string, Obj>();
  private readonly history: { rv: number; type: string; obj: Obj }[] = [];
  private readonly watches = new Set<WatchConn>();
  private rv = 100;
  private compactedBelow = 0;
  private uid = 0;
  private server!: http.Server;
  url = '';

  static async start(): Promise<FakeApiServer> {
    const f = new FakeApiServer();
    f.server = http.createServer((req, res) => { f.handle(req, res).catch((e) => { res.writeHead(500); res.end(String(e)); }); });
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', () => r()));
    const a = f.server.address() as { port: number };
    f.url = `http://127.0.0.1:${a.port}`;
    return f;
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.res.destroy();
    this.watches.clear();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private key(kind: string, ns: string | undefined, name: string): string { return `${kind}/${ns ?? ''}/${name}`; }

  /** Every stored object of a kind (a deep copy). */
  list(kind: string): Obj[] { return [...this.store.values()].filter((o) => o.kind === kind).map((o) => structuredClone(o)); }
  get(kind: string, name: string, ns?: string): Obj | undefined { const o = this.store.get(this.key(kind, ns, name)); return o ? structuredClone(o) : undefined; }

  /** Store an object as a controller or the kubelet would (bumps resourceVersion, tells watchers). */
  put(o: Obj): Obj {
    const k = this.key(o.kind, o.metadata.namespace, o.metadata.name);
    const old = this.store.get(k);
    const obj = structuredClone(o);
    obj.metadata.uid = old?.metadata.uid ?? obj.metadata.uid ?? `uid-${++this.uid}`;
    obj.metadata.creationTimestamp = old?.metadata.creationTimestamp ?? new Date().toISOString();
    const specChanged = !old || JSON.stringify(old.spec) !== JSON.stringify(obj.spec);
    obj.metadata.generation = (old?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    obj.metadata.resourceVersion = String(++this.rv);
    this.store.set(k, obj);
    this.emit(old ? 'MODIFIED' : 'ADDED', obj);
    return structuredClone(obj);
  }

  remove(kind: string, name: string, ns?: string): boolean {
    const k = this.key(kind, ns, name);
    const old = this.store.get(k);
    if (!old) return false;
    this.store.delete(k);
    const obj = { ...structuredClone(old), metadata: { ...old.metadata, resourceVersion: String(++this.rv) } };
    this.emit('DELETED', obj);
    return true;
  }

  /** Forget history: watches from an older resourceVersion get 410 Gone. */
  compact(): void { this.compactedBelow = this.rv; this.history.length = 0; }
  /** End every open watch (clients watch again from their last resourceVersion). */
  dropWatches(): void { for (const w of this.watches) w.res.end(); this.watches.clear(); }

  private emit(type: string, obj: Obj): void {
    this.history.push({ rv: this.rv, type, obj: structuredClone(obj) });
    for (const w of this.watches) if (this.matches(w.res0, w.ns, w.selector, obj)) w.res.write(JSON.stringify({ type, object: obj }) + '\n');
  }

  private matches(r: Resource, ns: string | null, sel: Record<string, string>, o: Obj): boolean {
    if (o.kind !== r.kind) return false;
    if (ns !== null && o.metadata.namespace !== ns) return false;
    return Object.entries(sel).every(([k, v]) => o.metadata.labels?.[k] === v);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url!, this.url);
    const query = Object.fromEntries(u.searchParams);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bodyText = Buffer.concat(chunks).toString();
    const entry: LoggedRequest = { method: req.method!, path: u.pathname, query, status: 0, ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}), ...(req.headers.authorization ? { user: req.headers.authorization.replace(/^Bearer /, '') } : {}) };
    this.log.push(entry);
    const send = (code: number, body: unknown): void => {
      entry.status = code;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const status = (code: number, reason: string, message: string): void => send(code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

    // discovery
    const disc = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(u.pathname);
    if (disc && req.method === 'GET') {
      const group = disc[1] ? '' : disc[2]!;
      const version = disc[1] ?? disc[3]!;
      const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
      if (!rs.length) return status(404, 'NotFound', `no API ${u.pathname}`);
      return send(200, {
        kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version,
        resources: rs.flatMap((r) => [
          { name: r.plural, singularName: r.kind.toLowerCase(), namespaced: r.namespaced, kind: r.kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
          ...(r.status ? [{ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] }] : []),
        ]),
      });
    }
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(u.pathname);
    if (!m) return status(404, 'NotFound', `no route ${u.pathname}`);
    const group = m[1] ?? '';
    const version = m[2] ?? 'v1';
    const ns = m[3] ?? null;
    const r = RESOURCES.find((x) => x.group === group && x.version === version && x.plural === m[4]);
    if (!r) return status(404, 'NotFound', `the server could not find the requested resource ${m[4]}`);
    const name = m[5];
    const sub = m[6];
    const selector = Object.fromEntries((query.labelSelector ?? '').split(',').filter(Boolean).map((s) => s.split('=') as [string, string]));
    const k = name ? this.key(r.kind, ns ?? undefined, name) : '';

    if (req.method === 'GET' && !name) {
      if (query.watch === 'true' || query.watch === '1') {
        const from = Number(query.resourceVersion ?? this.rv);
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.flushHeaders();
        entry.status = 200;
        if (from < this.compactedBelow) {
          res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${this.compactedBelow})`, reason: 'Expired', code: 410 } }) + '\n');
          return;
        }
        const w: WatchConn = { res, res0: r, ns, selector };
        for (const h of this.history) if (h.rv > from && this.matches(r, ns, selector, h.obj)) res.write(JSON.stringify({ type: h.type, object: h.obj }) + '\n');
        this.watches.add(w);
        res.on('close', () => this.watches.delete(w));
        return;
      }
      const items = [...this.store.values()].filter((o) => this.matches(r, ns, selector, o));
      return send(200, { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(this.rv) }, items });
    }
    const existing = name ? this.store.get(k) : undefined;
    if (req.method === 'GET') return existing ? send(200, existing) : status(404, 'NotFound', `${r.plural} "${name}" not found`);
    if (req.method === 'DELETE') return this.remove(r.kind, name!, ns ?? undefined) ? send(200, { kind: 'Status', apiVersion: 'v1', status: 'Success', metadata: {} }) : status(404, 'NotFound', `${r.plural} "${name}" not found`);
    let body: Obj;
    try { body = JSON.parse(bodyText || '{}') as Obj; } catch { return status(400, 'BadRequest', 'body is not JSON (this fake server takes JSON, also for apply)'); }
    if (req.method === 'POST') {
      const n = body.metadata?.name;
      if (!n) return status(422, 'Invalid', 'metadata.name: Required value');
      if (this.store.has(this.key(r.kind, ns ?? undefined, n))) return status(409, 'AlreadyExists', `${r.plural} "${n}" already exists`);
      return send(201, this.put({ ...body, apiVersion: apiVersionOf(r), kind: r.kind, metadata: { ...body.metadata, ...(ns ? { namespace: ns } : {}) } }));
    }
    if (req.method === 'PUT') {
      if (!existing) return status(404, 'NotFound', `${r.plural} "${name}" not found`);
      if (body.metadata?.resourceVersion && body.metadata.resourceVersion !== existing.metadata.resourceVersion) {
        return status(409, 'Conflict', `Operation cannot be fulfilled on ${r.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
      return send(200, this.put({ ...body, apiVersion: apiVersionOf(r), kind: r.kind, metadata: { ...body.metadata, name: name!, ...(ns ? { namespace: ns } : {}) } }));
    }
    if (req.method === 'PATCH') {
      const ct = String(req.headers['content-type'] ?? '');
      if (ct.startsWith('application/apply-patch+yaml')) {
        if (!query.fieldManager) return status(400, 'BadRequest', 'PATCH: fieldManager is required for apply requests');
        if (sub) return status(400, 'BadRequest', 'this fake server applies no status');
        const base = existing ? structuredClone(existing) : undefined;
        const merged = { ...(base ?? {}), ...body, apiVersion: apiVersionOf(r), kind: r.kind, metadata: { ...(base?.metadata ?? {}), ...body.metadata, name: name!, ...(ns ? { namespace: ns } : {}) } } as Obj;
        if (base && 'status' in base) merged.status = base.status;
        merged.metadata.managedFields = [{ manager: query.fieldManager, operation: 'Apply', apiVersion: apiVersionOf(r) }];
        return send(existing ? 200 : 201, this.put(merged));
      }
      if (ct.startsWith('application/merge-patch+json')) {
        if (!existing) return status(404, 'NotFound', `${r.plural} "${name}" not found`);
        if (sub === 'status') {
          const patched = structuredClone(existing);
          patched.status = mergePatch(existing.status, (body as { status?: unknown }).status ?? {});
          return send(200, this.put(patched));
        }
        return send(200, this.put(mergePatch(existing, body) as Obj));
      }
      return status(415, 'UnsupportedMediaType', `this fake server takes apply and merge patches, not ${ct}`);
    }
    return status(405, 'MethodNotAllowed', `${req.method} is not supported`);
  }
}
