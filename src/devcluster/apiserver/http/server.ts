/**
 * The HTTPS front of one local cluster's API: authentication, authorization, discovery,
 * OpenAPI, REST routing onto ApiClient, watch streaming, Tables and pod streams. It holds no
 * object state of its own; every object operation goes to the ApiClient, so in-process callers
 * and HTTP clients see the same semantics.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { parse as parseYaml } from "yaml";
import { errorMessage, type Logger } from "../../../base/index.js";
import type { Authenticator, Authorizer, PodStreams, RequestAttributes } from "../../api/plugins.js";
import type { EngineWriteOptions, LocalApiClient } from "../api.js";
import {
  ApiError,
  type DeleteOptions,
  type KubeObject,
  type ListOptions,
  type PatchType,
  type ResourceRef,
  type StatusBody,
  type UserInfo,
  type WatchEvent,
} from "../../api/types.js";
import type { ResourceInfo, ResourceRegistry } from "../registry.js";
import {
  aggregatedDiscovery,
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  subresourcesOf,
} from "./discovery.js";
import { mediaType, parseAccept, wantsAggregatedDiscovery, wantsTable } from "./negotiate.js";
import { OpenApiCache } from "./openapi.js";
import { ProtobufBodyError, decodeKubernetesProtobuf } from "./protobuf.js";
import { type RequestInfo, parseRequestInfo } from "./request-info.js";
import {
  badRequestStatus,
  forbiddenStatus,
  methodNotAllowedStatus,
  notServedStatus,
  statusOf,
  tooLargeStatus,
  unauthorizedStatus,
  unavailableStatus,
  unsupportedMediaTypeStatus,
} from "./status.js";
import { type IncludeObject, type PrinterColumn, toTable } from "./table.js";

/** Options of ApiHttpServer; see index.ts for the contract of each field. */
export interface ApiHttpServerOptions {
  api: LocalApiClient;
  registry: ResourceRegistry;
  authenticator: Authenticator;
  authorizer: Authorizer;
  podStreams?: PodStreams;
  tls: { cert: string; key: string };
  host: string;
  port: number;
  log: Logger;
  gitVersion?: string;
  builtinSchemas?: boolean;
  maxBodyBytes?: number;
  /** Watches without timeoutSeconds end after a random time in [min, 2*min) seconds; default 1800 as Kubernetes. */
  minWatchTimeoutSeconds?: number;
}

/** 3 MiB, kube-apiserver's limit for a request body. */
export const defaultMaxBodyBytes = 3 * 1024 * 1024;

const patchTypes: readonly PatchType[] = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
];
const crdRef: ResourceRef = { group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions" };
const healthPaths = new Set(["/healthz", "/livez", "/readyz"]);
const publicPaths = new Set(["/version", "/version/"]);
const discoveryPrefixes = ["/api", "/apis", "/openapi/"];

class HttpProblem extends Error {
  constructor(readonly status: StatusBody) {
    super(status.message);
  }
}

function fail(status: StatusBody): never {
  throw new HttpProblem(status);
}

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function versionInfo(gitVersion: string): object {
  const m = /^v(\d+)\.(\d+)/.exec(gitVersion);
  return {
    major: m?.[1] ?? "1",
    minor: m?.[2] ?? "32",
    gitVersion,
    gitCommit: "0000000000000000000000000000000000000000",
    gitTreeState: "clean",
    buildDate: "2026-01-01T00:00:00Z",
    goVersion: "go1.23.0",
    compiler: "gc",
    platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
    emulationMajor: m?.[1] ?? "1",
    emulationMinor: m?.[2] ?? "32",
  };
}

/** The HTTPS API server; see index.ts. */
export class ApiHttpServer {
  readonly #opts: ApiHttpServerOptions;
  readonly #gitVersion: string;
  readonly #maxBody: number;
  readonly #openapi: OpenApiCache;
  readonly #log: Logger;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #streams = new Set<AbortController>();
  #boundPort: number | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(opts: ApiHttpServerOptions) {
    this.#opts = opts;
    this.#gitVersion = opts.gitVersion ?? "v1.32.4";
    this.#maxBody = opts.maxBodyBytes ?? defaultMaxBodyBytes;
    this.#log = opts.log;
    this.#openapi = new OpenApiCache(() => opts.registry.all(), {
      gitVersion: this.#gitVersion,
      ...(opts.builtinSchemas !== undefined ? { builtinSchemas: opts.builtinSchemas } : {}),
    });
  }

  /** Starts accepting connections; resolves with the bound address. After stopListening, binds the same port again. */
  async listen(): Promise<{ host: string; port: number }> {
    if (this.#closed) throw new Error("ApiHttpServer: listen() after close()");
    if (this.#server) {
      const a = this.#server.address() as AddressInfo;
      return { host: this.#opts.host, port: a.port };
    }
    this.#unsubscribe ??= this.#opts.registry.onChange(() => this.#openapi.invalidate());
    const server = createServer({ cert: this.#opts.tls.cert, key: this.#opts.tls.key });
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      void this.#handle(req, res);
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#upgrade(req, socket, head);
    });
    server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    // TLS handshake failures (port scans, clients that distrust our CA) are the client's problem.
    server.on("tlsClientError", (err) => this.#log.debug("tls handshake failed", { error: err.message }));
    server.on("clientError", (err, socket) => {
      this.#log.debug("bad http request", { error: err.message });
      socket.destroy();
    });
    const port = this.#boundPort ?? this.#opts.port;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once("error", onError);
      server.listen(port, this.#opts.host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (err) => this.#log.error("api server error", { error: err.message }));
    this.#server = server;
    const addr = server.address() as AddressInfo;
    this.#boundPort = addr.port;
    this.#log.info("api server listening", { host: this.#opts.host, port: addr.port });
    return { host: this.#opts.host, port: addr.port };
  }

  /** Stops accepting, ends every watch and drops every connection; the store is untouched and listen() may be called again. */
  async stopListening(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const s of this.#streams) s.abort();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** stopListening for good. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stopListening();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  // ---- plumbing -------------------------------------------------------------------------------

  #send(res: ServerResponse, code: number, body: unknown, pretty: boolean, contentType = "application/json"): void {
    if (res.headersSent || res.destroyed) {
      if (!res.writableEnded) res.end();
      return;
    }
    const text = `${pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body)}\n`;
    res.writeHead(code, {
      "Content-Type": contentType,
      "Content-Length": Buffer.byteLength(text),
      "Cache-Control": "no-cache, private",
    });
    res.end(res.req.method === "HEAD" ? undefined : text);
  }

  #sendStatus(res: ServerResponse, status: StatusBody, pretty = false): void {
    this.#send(res, status.code, status, pretty);
  }

  async #readBody(req: IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (Number.isFinite(declared) && declared > this.#maxBody) fail(tooLargeStatus(this.#maxBody));
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > this.#maxBody) fail(tooLargeStatus(this.#maxBody));
      chunks.push(b);
    }
    return Buffer.concat(chunks);
  }

  /** Parses a JSON (or YAML) request body; 400 names the syntax problem, 415 the unsupported type. */
  #parseBody(buf: Buffer, contentType: string, allowed: readonly string[]): unknown {
    const type = mediaType(contentType);
    if (type === "application/apply-patch+yaml") {
      fail(
        unsupportedMediaTypeStatus(
          type,
          allowed,
          "server-side apply is not supported by this cluster: use client-side `kubectl apply` (without --server-side)",
        ),
      );
    }
    if (type === "application/vnd.kubernetes.protobuf" && allowed.includes("application/json")) {
      // kubectl's typed clients (create namespace/secret/..., auth can-i) write protobuf.
      try {
        return decodeKubernetesProtobuf(buf);
      } catch (err) {
        if (!(err instanceof ProtobufBodyError)) throw err;
        fail(err.unsupported ? unsupportedMediaTypeStatus(type, allowed, err.message) : badRequestStatus(err.message));
      }
    }
    if (type !== "" && !allowed.includes(type)) fail(unsupportedMediaTypeStatus(type, allowed));
    const text = buf.toString("utf8");
    if (text.trim() === "") fail(badRequestStatus("the request body is empty; send the object as JSON"));
    if (type === "application/yaml") {
      try {
        return parseYaml(text) as unknown;
      } catch (err) {
        fail(badRequestStatus(`the request body is not valid YAML: ${errorMessage(err)}`));
      }
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      fail(badRequestStatus(`the request body is not valid JSON: ${errorMessage(err)}`));
    }
  }

  #queryFlags(q: URLSearchParams): { dryRun: boolean; fieldManager?: string } {
    const dry = q.getAll("dryRun");
    for (const d of dry) {
      if (d !== "All") fail(badRequestStatus(`invalid dryRun value "${d}": the only supported value is "All"`));
    }
    const fv = q.get("fieldValidation");
    if (fv !== null && fv !== "" && !["Ignore", "Warn", "Strict"].includes(fv)) {
      fail(badRequestStatus(`invalid fieldValidation value "${fv}": use Ignore, Warn or Strict`));
    }
    const fm = q.get("fieldManager");
    if (fm !== null && fm.length > 128) fail(badRequestStatus(`fieldManager is longer than 128 characters`));
    return { dryRun: dry.length > 0, ...(fm ? { fieldManager: fm } : {}) };
  }

  #intParam(q: URLSearchParams, name: string): number | undefined {
    const v = q.get(name);
    if (v === null || v === "") return undefined;
    if (!/^-?\d+$/.test(v)) fail(badRequestStatus(`invalid ${name} value "${v}": must be an integer`));
    return Number(v);
  }

  /** The caller, after impersonation (`Impersonate-*` headers, e.g. `kubectl --as`); undefined for 401. */
  async #authenticate(req: IncomingMessage): Promise<UserInfo | undefined> {
    const header = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const user = await this.#opts.authenticator.authenticate(m?.[1]);
    if (!user) return undefined;
    return this.#impersonate(req, user);
  }

  /** Kubernetes' impersonation: the caller needs `impersonate` on each requested identity; the request then runs as it. */
  async #impersonate(req: IncomingMessage, caller: UserInfo): Promise<UserInfo> {
    const h = req.headers;
    const asUser = typeof h["impersonate-user"] === "string" ? h["impersonate-user"] : "";
    const groups = (req.headersDistinct["impersonate-group"] ?? []).filter((g) => g !== "");
    const uid = typeof h["impersonate-uid"] === "string" ? h["impersonate-uid"] : "";
    const extra: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(req.headersDistinct)) {
      if (!k.startsWith("impersonate-extra-") || !v) continue;
      let key: string;
      try {
        key = decodeURIComponent(k.slice("impersonate-extra-".length));
      } catch {
        fail(badRequestStatus(`invalid percent-encoding in header ${k}`));
      }
      extra[key] = v;
    }
    if (!asUser) {
      if (groups.length > 0 || uid || Object.keys(extra).length > 0) {
        fail(
          badRequestStatus("Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* need Impersonate-User as well"),
        );
      }
      return caller;
    }
    const check = async (apiGroup: string, resource: string, name: string, namespace = "", subresource = "") => {
      const attrs: RequestAttributes = {
        user: caller,
        verb: "impersonate",
        resourceRequest: true,
        path: req.url ?? "",
        apiGroup,
        apiVersion: "",
        resource,
        subresource,
        namespace,
        name,
      };
      const d = await this.#opts.authorizer.authorize(attrs);
      if (!d.allowed) fail(forbiddenStatus({ ...attrs, username: caller.username }, d.reason));
    };
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(asUser);
    if (sa) await check("", "serviceaccounts", sa[2] ?? "", sa[1] ?? "");
    else await check("", "users", asUser);
    for (const g of groups) await check("", "groups", g);
    if (uid) await check("authentication.k8s.io", "uids", uid);
    for (const [k, values] of Object.entries(extra))
      for (const v of values) await check("authentication.k8s.io", "userextras", v, "", k);
    const all = [...groups];
    if (sa) all.push("system:serviceaccounts", `system:serviceaccounts:${sa[1]}`);
    if (!all.includes("system:authenticated")) all.push("system:authenticated");
    return {
      username: asUser,
      groups: all,
      ...(uid ? { uid } : {}),
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
    };
  }

  async #authorize(user: UserInfo, ri: RequestInfo, verb = ri.verb): Promise<void> {
    const attrs: RequestAttributes = {
      user,
      verb,
      resourceRequest: ri.resourceRequest,
      path: ri.path,
      apiGroup: ri.apiGroup,
      apiVersion: ri.apiVersion,
      resource: ri.resource,
      subresource: ri.subresource,
      namespace: ri.namespace,
      name: ri.name,
    };
    const d = await this.#opts.authorizer.authorize(attrs);
    if (!d.allowed) fail(forbiddenStatus({ ...attrs, username: user.username }, d.reason));
  }

  // ---- requests -------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    res.on("finish", () =>
      this.#log.debug("request", {
        method: req.method,
        path: req.url?.split("?")[0],
        code: res.statusCode,
        ms: Date.now() - started,
      }),
    );
    let pretty = false;
    try {
      const url = new URL(req.url ?? "/", "https://api.invalid");
      const path = url.pathname;
      const q = url.searchParams;
      pretty = q.get("pretty") === "true" || q.get("pretty") === "1";
      const method = (req.method ?? "GET").toUpperCase();
      if (
        healthPaths.has(path) ||
        path.startsWith("/healthz/") ||
        path.startsWith("/livez/") ||
        path.startsWith("/readyz/")
      ) {
        res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
        res.end("ok");
        return;
      }
      if (publicPaths.has(path)) {
        if (method !== "GET" && method !== "HEAD") fail(methodNotAllowedStatus(method, path));
        this.#send(res, 200, versionInfo(this.#gitVersion), pretty);
        return;
      }
      const user = await this.#authenticate(req);
      if (!user) {
        req.resume();
        this.#sendStatus(res, unauthorizedStatus(), pretty);
        return;
      }
      const ri = parseRequestInfo(method, path, q);
      if (!ri.resourceRequest) {
        await this.#nonResource(req, res, user, ri, url, pretty);
        return;
      }
      await this.#resource(req, res, user, ri, q, pretty);
    } catch (err) {
      if (!(err instanceof HttpProblem) && !(err instanceof ApiError)) {
        this.#log.error("request failed", {
          method: req.method,
          path: req.url?.split("?")[0],
          error: errorMessage(err),
        });
      }
      const status = err instanceof HttpProblem ? err.status : statusOf(err);
      if (status.code === 413) res.setHeader("Connection", "close");
      if (!req.readableEnded) req.resume();
      this.#sendStatus(res, status, pretty);
    }
  }

  async #nonResource(
    req: IncomingMessage,
    res: ServerResponse,
    user: UserInfo,
    ri: RequestInfo,
    url: URL,
    pretty: boolean,
  ): Promise<void> {
    const path = ri.path.length > 1 && ri.path.endsWith("/") ? ri.path.slice(0, -1) : ri.path;
    const method = (req.method ?? "GET").toUpperCase();
    const isDiscovery = discoveryPrefixes.some((p) => path === p || path.startsWith(p.endsWith("/") ? p : `${p}/`));
    if (!isDiscovery) {
      // Everything else is unknown here; the authorizer decides whether the user may learn that.
      await this.#authorize(user, ri);
      fail(notServedStatus());
    }
    // Discovery and OpenAPI are open to every authenticated user (Kubernetes' system:discovery role).
    if (method !== "GET" && method !== "HEAD") fail(methodNotAllowedStatus(method, path));
    const resources = this.#opts.registry.all();
    const accept = parseAccept(req.headers.accept);
    const parts = path.split("/").filter((p) => p !== "");
    if (parts[0] === "api" || parts[0] === "apis") {
      const core = parts[0] === "api";
      if (parts.length === 1) {
        const agg = wantsAggregatedDiscovery(accept);
        res.setHeader("Vary", "Accept");
        if (agg) {
          res.setHeader("X-Varied-Accept", req.headers.accept ?? "");
          this.#send(
            res,
            200,
            aggregatedDiscovery(resources, core, agg),
            pretty,
            `application/json;g=apidiscovery.k8s.io;v=${agg};as=APIGroupDiscoveryList`,
          );
          return;
        }
        const host = req.headers.host ?? `${this.#opts.host}:${this.#boundPort ?? 0}`;
        this.#send(res, 200, core ? apiVersions(host) : apiGroupList(resources), pretty);
        return;
      }
      let doc: object | undefined;
      if (core && parts.length === 2) doc = apiResourceList(resources, "", parts[1] ?? "");
      else if (!core && parts.length === 2) doc = apiGroupDoc(resources, parts[1] ?? "");
      else if (!core && parts.length === 3) doc = apiResourceList(resources, parts[1] ?? "", parts[2] ?? "");
      if (doc === undefined) fail(notServedStatus());
      this.#send(res, 200, doc, pretty);
      return;
    }
    // /openapi/...
    if (path === "/openapi/v3") {
      this.#send(res, 200, this.#openapi.index(), pretty);
      return;
    }
    if (path.startsWith("/openapi/v3/")) {
      const gv = path.slice("/openapi/v3/".length);
      const doc = this.#openapi.document(gv);
      if (!doc) fail(notServedStatus());
      const asked = url.searchParams.get("hash");
      if (asked && asked !== doc.hash) {
        // The document changed since the client read the index: send it to the current one.
        res.writeHead(301, { Location: `/openapi/v3/${gv}?hash=${doc.hash}`, "Cache-Control": "no-cache, private" });
        res.end();
        return;
      }
      res.writeHead(200, {
        "Content-Type": "application/json",
        "Content-Length": Buffer.byteLength(doc.body),
        "Cache-Control": asked ? "public, immutable" : "no-cache, private",
        ETag: `"${doc.hash}"`,
      });
      res.end(method === "HEAD" ? undefined : doc.body);
      return;
    }
    // /openapi/v2 is not served: kubectl 1.29 and later need only v3 (see kubectl-requests.md).
    fail(notServedStatus());
  }

  #lookup(ri: RequestInfo): { info: ResourceInfo; ref: ResourceRef } {
    const ref: ResourceRef = { group: ri.apiGroup, version: ri.apiVersion, resource: ri.resource };
    const info = this.#opts.registry.lookup(ref);
    if (!info) fail(notServedStatus());
    if (ri.apiPrefix === "api" && ri.apiGroup !== "") fail(notServedStatus());
    return { info, ref };
  }

  async #resource(
    req: IncomingMessage,
    res: ServerResponse,
    user: UserInfo,
    ri: RequestInfo,
    q: URLSearchParams,
    pretty: boolean,
  ): Promise<void> {
    const { info, ref } = this.#lookup(ri);
    const method = (req.method ?? "GET").toUpperCase();
    const isNamespaceObject = info.group === "" && info.resource === "namespaces";
    // Scope: a cluster-scoped resource never sits under /namespaces/<ns>/ (the namespace object itself aside).
    if (!info.namespaced && ri.namespace !== "" && !isNamespaceObject) fail(notServedStatus());
    if (info.namespaced && ri.namespace === "" && ri.namedInPath) fail(notServedStatus());
    const ns = info.namespaced ? ri.namespace : undefined;
    if (ri.subresource !== "") {
      const sub = subresourcesOf(info).find((s) => s.name === ri.subresource);
      if (!sub) fail(notServedStatus());
      const verb = ri.verb;
      if (ri.subresource === "exec" || ri.subresource === "attach" || ri.subresource === "portforward") {
        await this.#authorize(user, ri, "create");
        fail(
          badRequestStatus(
            `${ri.subresource} needs an upgraded connection (WebSocket or SPDY/3.1); use kubectl ${ri.subresource === "portforward" ? "port-forward" : ri.subresource}`,
          ),
        );
      }
      if (!sub.verbs.includes(verb)) fail(methodNotAllowedStatus(method, `${info.resource}/${ri.subresource}`));
      await this.#authorize(user, ri);
      await this.#subresource(req, res, user, ri, info, ref, q, pretty);
      return;
    }
    if (info.virtual) {
      if (ri.verb !== "create") fail(methodNotAllowedStatus(method, info.resource));
      await this.#authorize(user, ri);
      await this.#createVirtual(req, res, user, ri, info, ref, q, pretty);
      return;
    }
    if (!info.verbs.includes(ri.verb) && !(ri.verb === "watch" && info.verbs.includes("list") && ri.namedInPath)) {
      fail(methodNotAllowedStatus(method, info.resource));
    }
    // Objects are created on collections and replaced/patched by name, never the other way round.
    if (
      (ri.verb === "create" && ri.namedInPath) ||
      ((ri.verb === "update" || ri.verb === "patch") && !ri.namedInPath)
    ) {
      fail(methodNotAllowedStatus(method, info.resource));
    }
    if (info.namespaced && ri.namespace === "" && ri.verb !== "list" && ri.verb !== "watch") {
      fail(methodNotAllowedStatus(method, info.resource));
    }
    await this.#authorize(user, ri);
    const table = method === "GET" ? wantsTable(parseAccept(req.headers.accept)) : undefined;
    const includeObject = this.#includeObject(q);
    switch (ri.verb) {
      case "get": {
        const obj = await this.#opts.api.get(ref, ns, ri.name);
        if (table) {
          await this.#sendTable(res, [obj], info, table, includeObject, { resourceVersion: "" }, pretty);
        } else this.#send(res, 200, obj, pretty);
        return;
      }
      case "list": {
        const listOpts = this.#listOptions(q, ns);
        const api = this.#opts.api as Partial<LocalApiClient>;
        if (!table && !pretty && typeof api.listJson === "function") {
          // Stored JSON texts go out as they are: no parse/serialize round trip for large lists.
          const raw = await api.listJson(ref, listOpts);
          const head = JSON.stringify({
            kind: info.listKind,
            apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
            metadata: { resourceVersion: raw.resourceVersion, ...(raw.continue ? { continue: raw.continue } : {}) },
          });
          const text = `${head.slice(0, -1)},"items":[${raw.items.join(",")}]}\n`;
          res.writeHead(200, {
            "Content-Type": "application/json",
            "Content-Length": Buffer.byteLength(text),
            "Cache-Control": "no-cache, private",
          });
          res.end(method === "HEAD" ? undefined : text);
          return;
        }
        const list = await this.#opts.api.list(ref, listOpts);
        if (table) {
          await this.#sendTable(
            res,
            list.items,
            info,
            table,
            includeObject,
            { resourceVersion: list.resourceVersion, ...(list.continue ? { continue: list.continue } : {}) },
            pretty,
          );
          return;
        }
        this.#send(
          res,
          200,
          {
            kind: info.listKind,
            apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
            metadata: { resourceVersion: list.resourceVersion, ...(list.continue ? { continue: list.continue } : {}) },
            items: list.items,
          },
          pretty,
        );
        return;
      }
      case "watch": {
        const opts = this.#listOptions(q, ns);
        if (ri.namedInPath)
          opts.fieldSelector = [opts.fieldSelector, `metadata.name=${ri.name}`].filter(Boolean).join(",");
        await this.#watch(res, ref, info, opts, q, table, includeObject);
        return;
      }
      case "create": {
        const obj = this.#objectBody(await this.#readBody(req), req, info, ns, undefined);
        const created = await this.#opts.api.create(ref, obj, this.#writeOptions(user, q, res));
        this.#send(res, 201, created, pretty);
        return;
      }
      case "update": {
        const obj = this.#objectBody(await this.#readBody(req), req, info, ns, ri.name);
        const updated = await this.#opts.api.update(ref, obj, this.#writeOptions(user, q, res));
        this.#send(res, 200, updated, pretty);
        return;
      }
      case "patch": {
        const buf = await this.#readBody(req);
        if (mediaType(req.headers["content-type"]) === "application/apply-patch+yaml" && this.#canApply()) {
          await this.#serverSideApply(buf, res, user, ri, ref, ns, q, pretty);
          return;
        }
        const { type, patch } = this.#patchBody(buf, req, info);
        const patched = await this.#opts.api.patch(ref, ns, ri.name, type, patch, this.#writeOptions(user, q, res));
        this.#send(res, 200, patched, pretty);
        return;
      }
      case "delete": {
        const opts = await this.#deleteOptions(req, q, user);
        const deleted = await this.#opts.api.delete(ref, ns, ri.name, opts);
        this.#send(res, 200, this.#deleteResult(deleted, info, opts), pretty);
        return;
      }
      case "deletecollection": {
        const opts = await this.#deleteOptions(req, q, user);
        const { limit: _limit, continue: _continue, ...selectors } = this.#listOptions(q, ns);
        const list = await this.#opts.api.deleteCollection(ref, { ...selectors, ...opts });
        const items = list.items;
        this.#send(
          res,
          200,
          {
            kind: info.listKind,
            apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
            metadata: { resourceVersion: list.resourceVersion },
            items,
          },
          pretty,
        );
        return;
      }
      default:
        fail(methodNotAllowedStatus(method, info.resource));
    }
  }

  #includeObject(q: URLSearchParams): IncludeObject {
    const v = q.get("includeObject");
    if (v === null || v === "" || v === "Metadata") return "Metadata";
    if (v === "None" || v === "Object") return v;
    fail(badRequestStatus(`invalid includeObject value "${v}": use None, Metadata or Object`));
  }

  #listOptions(q: URLSearchParams, ns: string | undefined): ListOptions {
    const opts: ListOptions = {};
    if (ns !== undefined && ns !== "") opts.namespace = ns;
    const ls = q.get("labelSelector");
    if (ls) opts.labelSelector = ls;
    const fs = q.get("fieldSelector");
    if (fs) opts.fieldSelector = fs;
    const limit = this.#intParam(q, "limit");
    if (limit !== undefined && limit > 0) opts.limit = limit;
    const cont = q.get("continue");
    if (cont) opts.continue = cont;
    const rv = q.get("resourceVersion");
    if (rv !== null) opts.resourceVersion = rv;
    return opts;
  }

  /** Write options from the query; warnings (fieldValidation=Warn) become `Warning: 299` headers on `res`. */
  #writeOptions(user: UserInfo, q: URLSearchParams, res: ServerResponse, subresource?: string): EngineWriteOptions {
    const flags = this.#queryFlags(q);
    const fv = q.get("fieldValidation");
    return {
      user,
      fieldValidation: fv === "Strict" || fv === "Ignore" ? fv : "Warn",
      onWarning: (message: string) => {
        if (res.headersSent) return;
        const prev = res.getHeader("Warning");
        const line = `299 - ${JSON.stringify(message)}`;
        res.setHeader(
          "Warning",
          prev === undefined ? [line] : [...(Array.isArray(prev) ? prev : [String(prev)]), line],
        );
      },
      ...(flags.dryRun ? { dryRun: true } : {}),
      ...(flags.fieldManager ? { fieldManager: flags.fieldManager } : {}),
      ...(subresource ? { subresource } : {}),
    };
  }

  /** A Scale body for PUT .../scale, in the URL's namespace and name. */
  #scaleBody(buf: Buffer, req: IncomingMessage, ns: string | undefined, name: string): KubeObject {
    const parsed = this.#parseBody(buf, req.headers["content-type"] ?? "", ["application/json", "application/yaml"]);
    if (!isObj(parsed)) fail(badRequestStatus("the request body must be a Scale object"));
    const metadata = isObj(parsed.metadata) ? parsed.metadata : {};
    if (ns !== undefined) metadata.namespace = ns;
    metadata.name = name;
    return { apiVersion: "autoscaling/v1", kind: "Scale", ...parsed, metadata } as unknown as KubeObject;
  }

  async #deleteOptions(
    req: IncomingMessage,
    q: URLSearchParams,
    user: UserInfo,
  ): Promise<DeleteOptions & { dryRun?: boolean }> {
    const buf = await this.#readBody(req);
    let body: Obj = {};
    if (buf.length > 0 && buf.toString("utf8").trim() !== "") {
      const parsed = this.#parseBody(buf, req.headers["content-type"] ?? "", ["application/json", "application/yaml"]);
      if (!isObj(parsed)) fail(badRequestStatus("the DeleteOptions in the request body must be a JSON object"));
      body = parsed;
    }
    const flags = this.#queryFlags(q);
    const opts: DeleteOptions & { dryRun?: boolean } = { user, ...(flags.dryRun ? { dryRun: true } : {}) };
    const grace =
      this.#intParam(q, "gracePeriodSeconds") ??
      (typeof body.gracePeriodSeconds === "number" ? body.gracePeriodSeconds : undefined);
    if (grace !== undefined) opts.gracePeriodSeconds = grace;
    const policy =
      q.get("propagationPolicy") ?? (typeof body.propagationPolicy === "string" ? body.propagationPolicy : null);
    if (policy !== null && policy !== "") {
      if (policy !== "Orphan" && policy !== "Background" && policy !== "Foreground") {
        fail(badRequestStatus(`invalid propagationPolicy "${policy}": use Orphan, Background or Foreground`));
      }
      opts.propagationPolicy = policy;
    } else if (body.orphanDependents === true) {
      opts.propagationPolicy = "Orphan";
    }
    if (isObj(body.preconditions)) {
      const p = body.preconditions;
      opts.preconditions = {
        ...(typeof p.uid === "string" ? { uid: p.uid } : {}),
        ...(typeof p.resourceVersion === "string" ? { resourceVersion: p.resourceVersion } : {}),
      };
    }
    return opts;
  }

  /** Kubernetes answers a finished delete with a Success Status, and a pending one (finalizers, grace) with the object. */
  #deleteResult(deleted: KubeObject, info: ResourceInfo, _opts: DeleteOptions): unknown {
    if (deleted.metadata.deletionTimestamp) return deleted;
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      details: {
        name: deleted.metadata.name,
        ...(info.group ? { group: info.group } : {}),
        kind: info.resource,
        uid: deleted.metadata.uid,
      },
    };
  }

  /** A create/update body: an object of the resource's kind, in the URL's namespace (and with the URL's name). */
  #objectBody(
    buf: Buffer,
    req: IncomingMessage,
    info: ResourceInfo,
    ns: string | undefined,
    name: string | undefined,
  ): KubeObject {
    const parsed = this.#parseBody(buf, req.headers["content-type"] ?? "", ["application/json", "application/yaml"]);
    if (!isObj(parsed))
      fail(
        badRequestStatus(
          `the request body must be a JSON object (a ${info.kind}), not ${Array.isArray(parsed) ? "an array" : typeof parsed}`,
        ),
      );
    const apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
    const kind = typeof parsed.kind === "string" && parsed.kind !== "" ? parsed.kind : info.kind;
    const av = typeof parsed.apiVersion === "string" && parsed.apiVersion !== "" ? parsed.apiVersion : apiVersion;
    if (kind !== info.kind || av !== apiVersion) {
      fail(
        badRequestStatus(
          `${kind} in version "${av.split("/").pop() ?? av}" cannot be handled as a ${info.kind}: the body's apiVersion/kind (${av}, ${kind}) does not match ${apiVersion}, ${info.kind} of ${info.resource}`,
        ),
      );
    }
    const metadata = parsed.metadata === undefined ? {} : parsed.metadata;
    if (!isObj(metadata)) fail(badRequestStatus(`metadata must be an object, got ${JSON.stringify(metadata)}`));
    if (ns !== undefined) {
      if (typeof metadata.namespace === "string" && metadata.namespace !== "" && metadata.namespace !== ns) {
        fail(
          badRequestStatus(
            `the namespace of the provided object (${metadata.namespace}) does not match the namespace sent on the request (${ns})`,
          ),
        );
      }
      metadata.namespace = ns;
    }
    if (name !== undefined) {
      if (typeof metadata.name === "string" && metadata.name !== "" && metadata.name !== name) {
        fail(
          badRequestStatus(`the name of the object (${metadata.name}) does not match the name on the URL (${name})`),
        );
      }
      metadata.name = name;
    }
    return { ...parsed, apiVersion: av, kind, metadata } as KubeObject;
  }

  /** Server-side apply is served when the store implements it (LocalApiClient.apply). */
  #canApply(): boolean {
    return typeof (this.#opts.api as Partial<LocalApiClient>).apply === "function";
  }

  /** PATCH with application/apply-patch+yaml: the YAML (or JSON) document goes to the store's apply. */
  async #serverSideApply(
    buf: Buffer,
    res: ServerResponse,
    user: UserInfo,
    ri: RequestInfo,
    ref: ResourceRef,
    ns: string | undefined,
    q: URLSearchParams,
    pretty: boolean,
  ): Promise<void> {
    const text = buf.toString("utf8");
    if (text.trim() === "") fail(badRequestStatus("the apply patch is empty; send the object's applied configuration"));
    let body: unknown;
    try {
      body = parseYaml(text) as unknown;
    } catch (err) {
      fail(badRequestStatus(`the apply patch is not valid YAML: ${errorMessage(err)}`));
    }
    const force = q.get("force") === "true";
    const fv = q.get("fieldValidation");
    const opts = { ...this.#writeOptions(user, q, res), force, ...(fv ? {} : { fieldValidation: "Strict" as const }) };
    const applied = await this.#opts.api.apply(ref, ns, ri.name, body, opts);
    this.#send(res, 200, applied, pretty);
  }

  #patchBody(buf: Buffer, req: IncomingMessage, info: ResourceInfo): { type: PatchType; patch: unknown } {
    const type = mediaType(req.headers["content-type"]);
    const accepted: PatchType[] = info.crd
      ? ["application/json-patch+json", "application/merge-patch+json"]
      : [...patchTypes];
    if (type === "application/strategic-merge-patch+json" && info.crd) {
      fail(
        unsupportedMediaTypeStatus(
          type,
          accepted,
          `strategic merge patch is not supported for custom resources (${info.resource}.${info.group}); use a JSON merge patch (kubectl patch --type=merge)`,
        ),
      );
    }
    const patch = this.#parseBody(buf, type, accepted);
    const t = type as PatchType;
    if (t === "application/json-patch+json" && !Array.isArray(patch)) {
      fail(badRequestStatus("a JSON patch (application/json-patch+json) must be an array of operations"));
    }
    if (t !== "application/json-patch+json" && !isObj(patch)) {
      fail(badRequestStatus(`a ${t} patch must be a JSON object`));
    }
    return { type: t, patch };
  }

  async #sendTable(
    res: ServerResponse,
    items: readonly KubeObject[],
    info: ResourceInfo,
    version: "v1" | "v1beta1",
    includeObject: IncludeObject,
    meta: { resourceVersion?: string; continue?: string },
    pretty: boolean,
  ): Promise<void> {
    const columns = await this.#printerColumns(info);
    const table = toTable(items, {
      group: info.group,
      resource: info.resource,
      tableVersion: version,
      includeObject,
      now: Date.now(),
      ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
      ...(meta.continue ? { continue: meta.continue } : {}),
      ...columns,
    });
    this.#send(res, 200, table, pretty, `application/json;as=Table;v=${version};g=meta.k8s.io`);
  }

  /** A custom resource's additionalPrinterColumns, read from its CRD (only custom resources have them). */
  async #printerColumns(info: ResourceInfo): Promise<{ printerColumns?: PrinterColumn[] }> {
    if (!info.crd) return {};
    let crd: KubeObject;
    try {
      crd = await this.#opts.api.get(crdRef, undefined, info.crd);
    } catch {
      return {};
    }
    const versions = isObj(crd.spec) && Array.isArray(crd.spec.versions) ? crd.spec.versions : [];
    const v = versions.find((x) => isObj(x) && x.name === info.version);
    if (!isObj(v) || !Array.isArray(v.additionalPrinterColumns)) return {};
    const cols = v.additionalPrinterColumns.filter(
      (c): c is PrinterColumn => isObj(c) && typeof c.name === "string" && typeof c.jsonPath === "string",
    );
    return { printerColumns: cols };
  }

  // ---- watch ----------------------------------------------------------------------------------

  async #watch(
    res: ServerResponse,
    ref: ResourceRef,
    info: ResourceInfo,
    opts: ListOptions,
    q: URLSearchParams,
    table: "v1" | "v1beta1" | undefined,
    includeObject: IncludeObject,
  ): Promise<void> {
    const asked = this.#intParam(q, "timeoutSeconds");
    const min = this.#opts.minWatchTimeoutSeconds ?? 1800;
    const timeoutS = asked !== undefined && asked > 0 ? asked : min + Math.floor(Math.random() * min);
    const ac = new AbortController();
    this.#streams.add(ac);
    const abort = () => ac.abort();
    res.on("close", abort);
    const timer = setTimeout(abort, timeoutS * 1000);
    const watchOpts = { ...opts, ...(q.get("allowWatchBookmarks") === "true" ? { allowWatchBookmarks: true } : {}) };
    const columns = table ? await this.#printerColumns(info) : {};
    const iterator = this.#opts.api.watch(ref, watchOpts, ac.signal)[Symbol.asyncIterator]();
    const aborted = new Promise<"aborted">((resolve) => {
      if (ac.signal.aborted) resolve("aborted");
      else ac.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
    });
    try {
      // Give the store one turn to refuse the watch (bad selector, ...) with a proper HTTP status;
      // otherwise flush headers at once: clients wait for them before they call a watch started.
      let first: Promise<IteratorResult<WatchEvent>> | undefined = iterator.next();
      let early: IteratorResult<WatchEvent> | { error: unknown } | undefined;
      first.then(
        (r) => {
          early = r;
        },
        (error: unknown) => {
          early = { error };
        },
      );
      await new Promise((r) => setImmediate(r));
      if (early !== undefined && "error" in early) throw early.error;
      const contentType = table ? `application/json;as=Table;v=${table};g=meta.k8s.io` : "application/json";
      res.writeHead(200, {
        "Content-Type": contentType,
        "Cache-Control": "no-cache, private",
        "Transfer-Encoding": "chunked",
      });
      res.flushHeaders();
      try {
        for (;;) {
          const next = first ?? iterator.next();
          // If the client goes away first, this promise is abandoned; its rejection must not go unhandled.
          next.catch(() => {});
          first = undefined;
          const r = await Promise.race([next, aborted]);
          if (r === "aborted" || r.done) break;
          const ev = r.value;
          let object: unknown = ev.object;
          if (ev.type === "BOOKMARK" && !ev.object.kind) {
            // Clients decode bookmarks as the watched kind; only metadata.resourceVersion matters.
            object = {
              ...ev.object,
              kind: info.kind,
              apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
            };
          }
          if (table && (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED")) {
            object = toTable([ev.object], {
              group: info.group,
              resource: info.resource,
              tableVersion: table,
              includeObject,
              now: Date.now(),
              ...(ev.object.metadata.resourceVersion ? { resourceVersion: ev.object.metadata.resourceVersion } : {}),
              ...columns,
            });
          }
          if (!res.write(`${JSON.stringify({ type: ev.type, object })}\n`)) {
            await Promise.race([new Promise((r) => res.once("drain", r)), aborted]);
          }
          if (ev.type === "ERROR") break;
        }
      } catch (err) {
        if (!ac.signal.aborted && !res.destroyed) {
          if (!(err instanceof ApiError))
            this.#log.error("watch failed", { resource: info.resource, error: errorMessage(err) });
          res.write(`${JSON.stringify({ type: "ERROR", object: statusOf(err) })}\n`);
        }
      }
    } finally {
      clearTimeout(timer);
      res.off("close", abort);
      this.#streams.delete(ac);
      ac.abort();
      void iterator.return?.().catch(() => {});
      if (res.headersSent && !res.writableEnded && !res.destroyed) res.end();
    }
  }

  // ---- subresources and virtual resources -----------------------------------------------------

  async #subresource(
    req: IncomingMessage,
    res: ServerResponse,
    user: UserInfo,
    ri: RequestInfo,
    info: ResourceInfo,
    ref: ResourceRef,
    q: URLSearchParams,
    pretty: boolean,
  ): Promise<void> {
    const ns = info.namespaced ? ri.namespace : undefined;
    const sub = ri.subresource;
    if (sub === "log") {
      const pod = await this.#opts.api.get(ref, ns, ri.name);
      const streams = this.#opts.podStreams;
      if (!streams) fail(unavailableStatus("pod logs are not available: this cluster has no node running"));
      await streams.logs(pod, q, res);
      return;
    }
    if (sub === "token") {
      await this.#createVirtual(req, res, user, ri, info, ref, q, pretty);
      return;
    }
    switch (ri.verb) {
      case "get":
        this.#send(res, 200, await this.#opts.api.getSubresource(ref, ns, ri.name, sub), pretty);
        return;
      case "update": {
        const obj =
          sub === "scale"
            ? this.#scaleBody(await this.#readBody(req), req, ns, ri.name)
            : this.#objectBody(await this.#readBody(req), req, info, ns, ri.name);
        this.#send(res, 200, await this.#opts.api.update(ref, obj, this.#writeOptions(user, q, res, sub)), pretty);
        return;
      }
      case "patch": {
        const { type, patch } = this.#patchBody(await this.#readBody(req), req, info);
        this.#send(
          res,
          200,
          await this.#opts.api.patch(ref, ns, ri.name, type, patch, this.#writeOptions(user, q, res, sub)),
          pretty,
        );
        return;
      }
      default:
        fail(methodNotAllowedStatus(req.method ?? "", `${info.resource}/${sub}`));
    }
  }

  /** POST to a computed resource (reviews) or to serviceaccounts/token; the store hands it to its VirtualResource. */
  async #createVirtual(
    req: IncomingMessage,
    res: ServerResponse,
    user: UserInfo,
    ri: RequestInfo,
    info: ResourceInfo,
    ref: ResourceRef,
    q: URLSearchParams,
    pretty: boolean,
  ): Promise<void> {
    const body = this.#parseBody(await this.#readBody(req), req.headers["content-type"] ?? "", [
      "application/json",
      "application/yaml",
    ]);
    if (!isObj(body)) fail(badRequestStatus("the request body must be a JSON object"));
    const metadata = isObj(body.metadata) ? body.metadata : {};
    if (info.namespaced) metadata.namespace = ri.namespace;
    // TokenRequest names its service account in the URL only.
    if (ri.subresource) metadata.name = ri.name;
    const obj = { ...body, metadata } as unknown as KubeObject;
    const out = await this.#opts.api.create(ref, obj, this.#writeOptions(user, q, res, ri.subresource || undefined));
    this.#send(res, 201, out, pretty);
  }

  // ---- upgrades (exec, attach, portforward) ---------------------------------------------------

  #rawStatus(socket: Duplex, status: StatusBody): void {
    const body = JSON.stringify(status);
    const reason = status.reason || "Error";
    socket.end(
      `HTTP/1.1 ${status.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", (err) => this.#log.debug("upgraded connection error", { error: err.message }));
    try {
      const url = new URL(req.url ?? "/", "https://api.invalid");
      const user = await this.#authenticate(req);
      if (!user) {
        this.#rawStatus(socket, unauthorizedStatus());
        return;
      }
      const ri = parseRequestInfo(req.method ?? "GET", url.pathname, url.searchParams);
      const kind = ri.subresource;
      if (
        !ri.resourceRequest ||
        ri.apiGroup !== "" ||
        ri.resource !== "pods" ||
        (kind !== "exec" && kind !== "attach" && kind !== "portforward")
      ) {
        this.#rawStatus(
          socket,
          badRequestStatus(
            `upgrade is only supported for pods/exec, pods/attach and pods/portforward, not ${url.pathname}`,
          ),
        );
        return;
      }
      const { ref } = this.#lookup(ri);
      // Kubernetes 1.32 requires `create` on these subresources for WebSocket (GET) upgrades too.
      await this.#authorize(user, ri, "create");
      const pod = await this.#opts.api.get(ref, ri.namespace, ri.name);
      const streams = this.#opts.podStreams;
      if (!streams) {
        this.#rawStatus(socket, unavailableStatus(`pods/${kind} is not available: this cluster has no node running`));
        return;
      }
      streams.upgrade(kind, pod, url.searchParams, req, socket, head);
    } catch (err) {
      const status = err instanceof HttpProblem ? err.status : statusOf(err);
      if (!(err instanceof HttpProblem) && !(err instanceof ApiError))
        this.#log.error("upgrade failed", { error: errorMessage(err) });
      if (!socket.destroyed) this.#rawStatus(socket, status);
    }
  }
}
