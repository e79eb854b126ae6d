/**
 * HTTP access to one Kubernetes API server, built on a KubeConfig (credentials, CA, TLS). Only
 * what the mesh needs: get, list (with paging) and watch streams of newline-delimited JSON.
 */
import http from "node:http";
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { IsthmusError, errorMessage } from "../base/index.js";
import { type KubeObject, type ResourceType, isKubeObject, resourcePath } from "./objects.js";

/** Thrown for a non-2xx answer from the API server; `status` is the HTTP status, `reason` the Status reason. */
export class KubeApiError extends IsthmusError {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(status === 410 ? "KUBE_WATCH_EXPIRED" : "KUBE_API_ERROR", message);
    this.status = status;
    this.reason = reason;
  }
  /** The HTTP status under the name other clients use, so generic status checks recognise it. */
  get statusCode(): number {
    return this.status;
  }
}

/** One event of a watch stream. BOOKMARK events carry only a resourceVersion. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  readonly object: KubeObject;
}

export interface ListResult {
  readonly items: readonly KubeObject[];
  readonly resourceVersion: string;
}

export interface ListWatchQuery {
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/** What informers need from a client; KubeClient implements it, tests may fake it. */
export interface ListWatcher {
  list(type: ResourceType, query: ListWatchQuery, signal: AbortSignal): Promise<ListResult>;
  /** Events after `resourceVersion` until the server ends the stream or `signal` aborts. A 410 throws KubeApiError(410). */
  watch(
    type: ResourceType,
    query: ListWatchQuery & { resourceVersion: string },
    signal: AbortSignal,
  ): AsyncIterable<WatchEvent>;
}

function statusMessage(status: number, body: string, what: string): KubeApiError {
  let reason = "";
  let message = body.slice(0, 300);
  try {
    const s = JSON.parse(body) as { reason?: unknown; message?: unknown };
    if (typeof s.reason === "string") reason = s.reason;
    if (typeof s.message === "string") message = s.message;
  } catch {
    // not a Status body: keep the raw text (truncated)
  }
  return new KubeApiError(status, reason, `${what}: HTTP ${status}${reason ? ` ${reason}` : ""}: ${message}`);
}

/** A client for one API server. The constructor does no I/O. */
export class KubeClient implements ListWatcher {
  readonly #kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  /** The API server's URL, for logs and reasons. */
  get server(): string {
    return this.#kc.getCurrentCluster()?.server ?? "(none)";
  }

  async #open(method: string, path: string, signal: AbortSignal, body?: unknown): Promise<http.IncomingMessage> {
    const server = this.server;
    const url = new URL(path, server.endsWith("/") ? server : `${server}/`);
    // A server with a path prefix (a proxy) keeps it.
    const prefix = new URL(server).pathname.replace(/\/$/, "");
    const opts: https.RequestOptions = { method, headers: { Accept: "application/json" } };
    await this.#kc.applyToHTTPSOptions(opts);
    opts.hostname = url.hostname.replace(/^\[|\]$/g, "");
    opts.port = url.port || (url.protocol === "https:" ? 443 : 80);
    opts.path = `${prefix}${path}`;
    opts.signal = signal;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) opts.headers = { ...opts.headers, "Content-Type": "application/json" };
    const mod = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(opts, resolve);
      req.on("error", (err: Error & { code?: string }) =>
        reject(
          signal.aborted
            ? err
            : new Error(`cannot reach API server ${server}: ${err.code ?? err.message}`, { cause: err }),
        ),
      );
      req.end(payload);
    });
  }

  /** GET/POST a path and parse the JSON answer; non-2xx rejects with KubeApiError. */
  async requestJson(method: string, path: string, signal: AbortSignal, body?: unknown): Promise<unknown> {
    const res = await this.#open(method, path, signal, body);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw statusMessage(status, text, `${method} ${this.server}${path}`);
    return JSON.parse(text) as unknown;
  }

  /** One object, or undefined when it does not exist. */
  async get(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    signal: AbortSignal,
  ): Promise<KubeObject | undefined> {
    try {
      const obj = await this.requestJson("GET", resourcePath(type, namespace, name), signal);
      return isKubeObject(obj) ? obj : undefined;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** POST an object to its collection; returns the stored object. */
  async create(type: ResourceType, obj: KubeObject, signal: AbortSignal): Promise<unknown> {
    // Reviews (TokenReview) carry no metadata at all.
    const ns = (obj as { metadata?: { namespace?: string } }).metadata?.namespace;
    return this.requestJson("POST", resourcePath(type, ns), signal, obj);
  }

  /** PUT an object; a stale resourceVersion rejects with KubeApiError(409). */
  async update(type: ResourceType, obj: KubeObject, signal: AbortSignal): Promise<unknown> {
    return this.requestJson("PUT", resourcePath(type, obj.metadata.namespace, obj.metadata.name), signal, obj);
  }

  async list(type: ResourceType, query: ListWatchQuery, signal: AbortSignal): Promise<ListResult> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    do {
      const q = new URLSearchParams({ limit: "500" });
      if (query.labelSelector) q.set("labelSelector", query.labelSelector);
      if (query.fieldSelector) q.set("fieldSelector", query.fieldSelector);
      if (cont) q.set("continue", cont);
      const body = (await this.requestJson("GET", `${resourcePath(type, query.namespace)}?${q}`, signal)) as {
        items?: unknown;
        metadata?: { resourceVersion?: unknown; continue?: unknown };
      };
      for (const it of Array.isArray(body.items) ? body.items : []) if (isKubeObject(it)) items.push(it);
      resourceVersion = typeof body.metadata?.resourceVersion === "string" ? body.metadata.resourceVersion : "";
      cont =
        typeof body.metadata?.continue === "string" && body.metadata.continue !== ""
          ? body.metadata.continue
          : undefined;
    } while (cont !== undefined);
    return { items, resourceVersion };
  }

  async *watch(
    type: ResourceType,
    query: ListWatchQuery & { resourceVersion: string },
    signal: AbortSignal,
  ): AsyncIterable<WatchEvent> {
    const q = new URLSearchParams({
      watch: "true",
      resourceVersion: query.resourceVersion,
      allowWatchBookmarks: "true",
      // The server ends the stream after this; the informer re-watches from its last resourceVersion.
      timeoutSeconds: String(300 + Math.floor(Math.random() * 300)),
    });
    if (query.labelSelector) q.set("labelSelector", query.labelSelector);
    if (query.fieldSelector) q.set("fieldSelector", query.fieldSelector);
    const path = `${resourcePath(type, query.namespace)}?${q}`;
    const res = await this.#open("GET", path, signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw statusMessage(status, Buffer.concat(chunks).toString("utf8"), `watch ${this.server}${path}`);
    }
    let buffered = "";
    const server = this.server;
    const chunks = (async function* () {
      try {
        for await (const chunk of res) yield chunk as Buffer;
      } catch (err) {
        if (signal.aborted) throw err;
        throw new Error(`watch ${server}${path}: connection to the API server lost (${errorMessage(err)})`, {
          cause: err,
        });
      }
    })();
    for await (const chunk of chunks) {
      buffered += (chunk as Buffer).toString("utf8");
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
        if (line === "") continue;
        const ev = JSON.parse(line) as { type?: unknown; object?: unknown };
        if (ev.type === "ERROR") {
          const s = (ev.object ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
          const code = typeof s.code === "number" ? s.code : 500;
          throw new KubeApiError(
            code,
            typeof s.reason === "string" ? s.reason : "",
            `watch ${this.server}${path}: ${String(s.message ?? "error event")}`,
          );
        }
        if (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED" || ev.type === "BOOKMARK") {
          if (isKubeObject(ev.object) || ev.type === "BOOKMARK")
            yield { type: ev.type, object: ev.object as KubeObject };
        }
      }
    }
  }
}
