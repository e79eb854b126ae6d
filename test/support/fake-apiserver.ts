/**
 * A minimal in-memory Kubernetes API server for informer and registry tests: list (with
 * equality label selectors), watch from a resourceVersion (410 once compacted), bearer-token
 * check. Plain HTTP on 127.0.0.1, port 0. Only what the mesh's informers use.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

interface Event {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  plural: string;
  obj: Obj;
}

const collectionRe = /^\/(?:api\/v1|apis\/[^/]+\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)$/;

export class FakeApiServer {
  readonly #server = http.createServer((req, res) => this.#handle(req, res));
  readonly #objects = new Map<string, Map<string, Obj>>();
  readonly #history: Event[] = [];
  readonly #watchers = new Set<{
    plural: string;
    ns?: string;
    selector: Record<string, string>;
    res: http.ServerResponse;
  }>();
  #rv = 100;
  #compactedBefore = 0;
  /** Requests must carry this bearer token; undefined accepts any. */
  token: string | undefined;
  /** Counts list requests per plural, so tests can see relists. */
  readonly lists = new Map<string, number>();

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig for this server (http needs insecure-skip-tls-verify in client-node). */
  kubeconfig(name = "fake", token = this.token ?? "t"): string {
    return [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: ${name}, cluster: {server: "${this.url}", insecure-skip-tls-verify: true}}]`,
      `users: [{name: ${name}, user: {token: "${token}"}}]`,
      `contexts: [{name: ${name}, context: {cluster: ${name}, user: ${name}}}]`,
      `current-context: ${name}`,
      "",
    ].join("\n");
  }

  /** Creates or replaces an object; emits ADDED or MODIFIED. */
  put(plural: string, obj: Obj): void {
    const coll = this.#coll(plural);
    const key = keyOf(obj);
    const type = coll.has(key) ? "MODIFIED" : "ADDED";
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.#rv) } };
    coll.set(key, stored);
    this.#event({ rv: this.#rv, type, plural, obj: stored });
  }

  remove(plural: string, namespace: string | undefined, name: string): void {
    const coll = this.#coll(plural);
    const key = namespace ? `${namespace}/${name}` : name;
    const prev = coll.get(key);
    if (prev === undefined) return;
    coll.delete(key);
    this.#event({
      rv: ++this.#rv,
      type: "DELETED",
      plural,
      obj: { ...prev, metadata: { ...prev.metadata, resourceVersion: String(this.#rv) } },
    });
  }

  /** Forgets history: watches from older resourceVersions get 410 Gone; open watches are ended. */
  compact(): void {
    this.#compactedBefore = this.#rv + 1;
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
  }

  /** Stops listening and drops every connection: the server is unreachable until start() is called again. */
  async stop(): Promise<void> {
    for (const w of this.#watchers) w.res.destroy();
    this.#watchers.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  /** Listens again on the same port. */
  async restart(port: number): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(port, "127.0.0.1", r));
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  #coll(plural: string): Map<string, Obj> {
    let c = this.#objects.get(plural);
    if (c === undefined) {
      c = new Map();
      this.#objects.set(plural, c);
    }
    return c;
  }

  #event(e: Event): void {
    this.#history.push(e);
    for (const w of this.#watchers) if (matches(w, e.plural, e.obj)) write(w.res, e);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          status: "Failure",
          reason: "Unauthorized",
          message: "Unauthorized",
          code: 401,
        }),
      );
      return;
    }
    const url = new URL(req.url ?? "/", "http://x");
    const m = collectionRe.exec(url.pathname);
    if (req.method !== "GET" || m === null) {
      res.writeHead(404).end();
      return;
    }
    const ns = m[1];
    const plural = m[2] ?? "";
    const selector = Object.fromEntries(
      (url.searchParams.get("labelSelector") ?? "")
        .split(",")
        .filter((s) => s !== "")
        .map((s) => s.split("=") as [string, string]),
    );
    const w = { plural, ...(ns ? { ns } : {}), selector, res };
    if (url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1") {
      const from = Number(url.searchParams.get("resourceVersion") ?? "0");
      res.writeHead(200, { "Content-Type": "application/json" });
      res.flushHeaders();
      if (from < this.#compactedBefore - 1) {
        res.end(
          `${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" } })}\n`,
        );
        return;
      }
      for (const e of this.#history) if (e.rv > from && matches(w, e.plural, e.obj)) write(res, e);
      this.#watchers.add(w);
      res.on("close", () => this.#watchers.delete(w));
      return;
    }
    this.lists.set(plural, (this.lists.get(plural) ?? 0) + 1);
    const items = [...this.#coll(plural).values()].filter((o) => matches(w, plural, o));
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kind: "List", apiVersion: "v1", metadata: { resourceVersion: String(this.#rv) }, items }));
  }
}

function keyOf(o: Obj): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

function matches(
  w: { plural: string; ns?: string; selector: Record<string, string> },
  plural: string,
  o: Obj,
): boolean {
  if (w.plural !== plural) return false;
  if (w.ns !== undefined && o.metadata.namespace !== w.ns) return false;
  for (const [k, v] of Object.entries(w.selector)) if (o.metadata.labels?.[k] !== v) return false;
  return true;
}

function write(res: http.ServerResponse, e: Event): void {
  res.write(`${JSON.stringify({ type: e.type, object: e.obj })}\n`);
}
