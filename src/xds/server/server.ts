/**
 * The ADS server: state-of-the-world and delta streams over gRPC, per-proxy subscriptions,
 * versions and nonces, ACK/NACK bookkeeping, debounced pushes from the registry, debug views
 * (syncz, config dump) and metrics. It reads the mesh only through `view()` and the generators.
 *
 * Cost model (docs in bench/xds.ts): each resource is encoded once per push and shared; a SotW
 * response whose bytes another proxy already got in this push is shared whole (nonces are unique
 * server-wide, so one nonce may serve many streams); writes go through one SendLimiter, so a push
 * to many slow proxies waits on gRPC flow control instead of buffering a copy per proxy.
 */
import { createHash } from "node:crypto";
import { type DescMessage, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Any, AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { errorMessage, type Logger, silentLogger } from "../../base/index.js";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "../../gen/envoy/service/discovery/v3/discovery_pb.js";
import type { ClusterId, ProxyView, ServiceView } from "../../model/index.js";
import { type Clock, Debouncer, type MergedPush, type PushRequest, realClock } from "../push/debounce.js";
import { XdsMetrics } from "../push/metrics.js";
import { pushThrottleEnv, type ReleaseSlot, SendLimiter } from "../push/send-limiter.js";
import {
  allTypeUrls,
  defaultMeshSettings,
  type Generated,
  isTypeUrl,
  type MeshSettings,
  PushContext,
  shortType,
  TypeUrl,
} from "../resources/common.js";
import { generate, schemaOf, xdsRegistry } from "../resources/generate.js";
import { adsServiceDefinition } from "./ads-service.js";
import { classifyRequest } from "./classify.js";
import { metadataString, proxyFromNode } from "./node.js";
import {
  encodeDeltaDiscoveryResponse,
  encodeDeltaResourceField,
  encodeDiscoveryResponse,
  encodeResourceField,
} from "./wire.js";

export interface XdsServerOptions {
  /** The latest service view; read at the start of every push (and for the first request). */
  readonly view: () => ServiceView;
  /** The control plane's own Kubernetes cluster: the default for nodes without CLUSTER_ID. */
  readonly clusterId: ClusterId;
  readonly network?: string;
  readonly meshId?: string;
  readonly mesh?: MeshSettings;
  /** PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX in ms; defaults 100 and 10,000. */
  readonly debounceAfterMs?: number;
  readonly debounceMaxMs?: number;
  /** PILOT_PUSH_THROTTLE: responses being written at once across all streams; default 25. */
  readonly concurrentSends?: number;
  /** Time source for debounce and convergence; tests inject one. */
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** TLS for a listening port (15012). Key material is never logged. */
export interface XdsTlsOptions {
  readonly key: Buffer | string;
  readonly cert: Buffer | string;
  /** CA bundle to verify client certificates with; required when requireClientCert is true. */
  readonly ca?: Buffer | string;
  readonly requireClientCert?: boolean;
}

export interface XdsListenOptions {
  /** Defaults to 0.0.0.0. */
  readonly host?: string;
  /** 0 picks a free port; the bound port is returned. */
  readonly port: number;
  readonly tls?: XdsTlsOptions;
}

/** Per-type sync state of one connection, as /debug/syncz shows it. */
export interface TypeSyncStatus {
  readonly type: string;
  /** Subscribed names, or "*" for wildcard. */
  readonly subscribed: readonly string[] | "*";
  readonly sentVersion: string;
  readonly sentNonce: string;
  readonly sentResources: number;
  readonly ackedVersion: string;
  readonly ackedNonce: string;
  readonly nack?: { readonly version: string; readonly nonce: string; readonly message: string };
  /** SYNCED (last response ACKed), STALE (awaiting ACK), NACKED, or NOT SENT. */
  readonly status: "SYNCED" | "STALE" | "NACKED" | "NOT SENT";
}

/** One connected proxy, for /debug/syncz and `proxy-status`. */
export interface ConnectionStatus {
  readonly connectionId: string;
  readonly proxyId: string;
  readonly proxyType: ProxyView["type"];
  readonly clusterId: ClusterId;
  readonly mode: "sotw" | "delta";
  readonly peer: string;
  readonly connectedAt: string;
  /** The proxy's node metadata ISTIO_VERSION, when it sends one. */
  readonly istioVersion?: string;
  readonly types: readonly TypeSyncStatus[];
}

interface SentResource {
  readonly name: string;
  readonly hash: string;
  readonly any?: Any;
  /** The resource as a ready-made DiscoveryResponse `resources` field (wire.ts). */
  readonly field?: Buffer;
}

interface Watch {
  readonly typeUrl: TypeUrl;
  wildcard: boolean;
  names: Set<string>;
  nonce: string;
  version: string;
  /** What the client holds as far as the server knows: the resources of the last response(s). */
  sent: Map<string, SentResource>;
  ackedResources?: Map<string, SentResource>;
  acked?: { version: string; nonce: string };
  nacked?: { version: string; nonce: string; message: string };
  /** Event time of the push that produced `nonce`, for convergence. */
  trigger?: number;
}

interface Connection {
  readonly id: string;
  readonly proxy: ProxyView;
  readonly mode: "sotw" | "delta";
  readonly peer: string;
  readonly connectedAt: Date;
  readonly istioVersion: string | undefined;
  readonly watches: Map<TypeUrl, Watch>;
  /** Encoded responses waiting for a send slot, oldest first; one is written at a time. */
  readonly outbox: Buffer[];
  writing: boolean;
  closed: boolean;
  /** The send slot held by the write in flight, released when gRPC is done with it or the stream goes. */
  slot: ReleaseSlot | undefined;
  /** Hands bytes to gRPC; `done` runs once they are written (or failed). */
  readonly write: (bytes: Buffer, done: () => void) => void;
  readonly close: () => void;
}

interface Encoded extends SentResource {
  readonly any: Any;
  readonly field: Buffer;
  /** The resource as a DeltaDiscoveryResponse `resources` field, built on first use by a delta stream. */
  deltaField?: Buffer;
}

/** Bytes of SotW responses a push keeps for sharing; beyond it, responses are still sent, just not kept. */
const sharedResponseBudget = 128 << 20;

/**
 * A push's inputs plus what it has encoded: each resource once, and each distinct SotW response
 * once (keyed by type and content version, so proxies of the same shape get the same bytes).
 */
class PushState {
  readonly ctx: PushContext;
  readonly #encoded = new WeakMap<object, Encoded>();
  readonly #responses = new Map<string, { readonly nonce: string; readonly bytes: Buffer }>();
  #responseBytes = 0;
  constructor(ctx: PushContext) {
    this.ctx = ctx;
  }
  encode(typeUrl: TypeUrl, g: Generated): Encoded {
    const hit = this.#encoded.get(g.message);
    if (hit !== undefined) return hit;
    const any = anyPack(schemaOf[typeUrl] as DescMessage, g.message);
    const hash = createHash("sha256").update(any.value).digest("base64url").slice(0, 16);
    const enc: Encoded = { name: g.name, hash, any, field: encodeResourceField(any.typeUrl, any.value) };
    this.#encoded.set(g.message, enc);
    return enc;
  }
  deltaField(r: Encoded): Buffer {
    r.deltaField ??= encodeDeltaResourceField(r.name, r.hash, r.field);
    return r.deltaField;
  }
  sharedResponse(key: string): { readonly nonce: string; readonly bytes: Buffer } | undefined {
    return this.#responses.get(key);
  }
  keepResponse(key: string, nonce: string, bytes: Buffer): void {
    if (this.#responseBytes + bytes.length > sharedResponseBudget) return;
    this.#responseBytes += bytes.length;
    this.#responses.set(key, { nonce, bytes });
  }
}

/**
 * The version after a partial update: derived from the previous version and what changed, so a
 * one-endpoint change does not rehash a thousand resources per proxy. Still changes only with content.
 */
function chainVersion(prev: string, changed: readonly SentResource[], removed: readonly string[] = []): string {
  const h = createHash("sha256").update(prev);
  for (const r of changed) h.update(`${r.name}\0${r.hash}\n`);
  for (const n of removed) h.update(`-${n}\n`);
  return h.digest("base64url").slice(0, 12);
}

function versionOf(sent: ReadonlyMap<string, SentResource>): string {
  const h = createHash("sha256");
  for (const name of [...sent.keys()].sort()) h.update(`${name}\0${sent.get(name)?.hash ?? ""}\n`);
  return h.digest("base64url").slice(0, 12);
}

const wildcardTypes: ReadonlySet<string> = new Set([TypeUrl.Cluster, TypeUrl.Listener]);

export class XdsServer {
  readonly metrics = new XdsMetrics();
  readonly #opts: XdsServerOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #mesh: MeshSettings;
  readonly #debouncer: Debouncer;
  readonly #connections = new Map<string, Connection>();
  readonly #sends: SendLimiter;
  #state: PushState | undefined;
  /** Server-wide nonce counter: a nonce never repeats on any stream, so one response may serve many. */
  #nonces = 0;
  #lastView: ServiceView | undefined;
  #server: grpc.Server | undefined;
  #connCounter = 0;
  #closed = false;

  constructor(opts: XdsServerOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
    this.#clock = opts.clock ?? realClock;
    this.#mesh = opts.mesh ?? defaultMeshSettings;
    this.#debouncer = new Debouncer({
      afterMs: opts.debounceAfterMs ?? 100,
      maxMs: opts.debounceMaxMs ?? 10_000,
      clock: this.#clock,
      log: this.#log,
      push: (merged) => this.#push(merged),
    });
    this.#sends = new SendLimiter(opts.concurrentSends ?? pushThrottleEnv.defaultValue);
  }

  /** Adds the ADS service to a gRPC server the caller owns (e.g. one also serving the CA on 15012). */
  register(server: grpc.Server): void {
    server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) =>
        this.#serve(call, "sotw", (conn, req) => this.#onSotwRequest(conn, req)),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
        this.#serve(call, "delta", (conn, req) => this.#onDeltaRequest(conn, req)),
    });
  }

  /** Listens on one more address (plaintext, or TLS with `tls`); resolves to the bound port. */
  async listen(opts: XdsListenOptions): Promise<number> {
    if (this.#server === undefined) {
      this.#server = new grpc.Server({ "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 });
      this.register(this.#server);
    }
    const creds = opts.tls
      ? grpc.ServerCredentials.createSsl(
          opts.tls.ca !== undefined ? Buffer.from(opts.tls.ca) : null,
          [{ private_key: Buffer.from(opts.tls.key), cert_chain: Buffer.from(opts.tls.cert) }],
          opts.tls.requireClientCert ?? false,
        )
      : grpc.ServerCredentials.createInsecure();
    const address = `${opts.host ?? "0.0.0.0"}:${opts.port}`;
    const server = this.#server;
    return new Promise((resolve, reject) =>
      server.bindAsync(address, creds, (err, port) =>
        err ? reject(new Error(`cannot listen for xDS on ${address}: ${err.message}`)) : resolve(port),
      ),
    );
  }

  /** Asks for a push; debounced and merged with other requests (PILOT_DEBOUNCE_AFTER/MAX). */
  pushRequest(req: PushRequest): void {
    this.#debouncer.request(req);
  }

  /** Resolves once no push is pending or running. */
  idle(): Promise<void> {
    return this.#debouncer.idle();
  }

  /** Connected proxies with per-type sent/ACKed/NACKed state (for /debug/syncz). */
  connections(): ConnectionStatus[] {
    return [...this.#connections.values()].map((c) => ({
      connectionId: c.id,
      proxyId: c.proxy.id,
      proxyType: c.proxy.type,
      clusterId: c.proxy.clusterId,
      mode: c.mode,
      peer: c.peer,
      connectedAt: c.connectedAt.toISOString(),
      ...(c.istioVersion !== undefined ? { istioVersion: c.istioVersion } : {}),
      types: allTypeUrls.flatMap((t) => {
        const w = c.watches.get(t);
        if (w === undefined) return [];
        const status: TypeSyncStatus["status"] =
          w.nonce === ""
            ? "NOT SENT"
            : w.nacked?.nonce === w.nonce
              ? "NACKED"
              : w.acked?.nonce === w.nonce
                ? "SYNCED"
                : "STALE";
        return [
          {
            type: shortType(t),
            subscribed: w.wildcard ? "*" : [...w.names].sort(),
            sentVersion: w.version,
            sentNonce: w.nonce,
            sentResources: w.sent.size,
            ackedVersion: w.acked?.version ?? "",
            ackedNonce: w.acked?.nonce ?? "",
            ...(w.nacked ? { nack: { ...w.nacked } } : {}),
            status,
          },
        ];
      }),
    }));
  }

  /**
   * What was sent to a proxy (by node ID or connection ID), per type, resources as Envoy JSON; the
   * last ACKed set is listed separately when a later response was NACKed. Undefined if not connected.
   */
  configDump(proxyId: string): JsonValue | undefined {
    const conn = [...this.#connections.values()].find((c) => c.proxy.id === proxyId || c.id === proxyId);
    if (conn === undefined) return undefined;
    const json = (m: ReadonlyMap<string, SentResource> | undefined) =>
      [...(m?.values() ?? [])]
        .filter((r) => r.any !== undefined)
        .map((r) => toJson(AnySchema, r.any as Any, { registry: xdsRegistry }));
    const types: Record<string, JsonValue> = {};
    for (const t of allTypeUrls) {
      const w = conn.watches.get(t);
      if (w === undefined) continue;
      types[shortType(t)] = {
        versionInfo: w.version,
        nonce: w.nonce,
        ackedVersion: w.acked?.version ?? "",
        ...(w.nacked ? { nack: { ...w.nacked } } : {}),
        resources: json(w.sent),
        ...(w.nacked?.nonce === w.nonce && w.ackedResources ? { lastGoodResources: json(w.ackedResources) } : {}),
      };
    }
    return {
      proxyId: conn.proxy.id,
      connectionId: conn.id,
      proxy: { ...conn.proxy, labels: { ...conn.proxy.labels } },
      types,
    };
  }

  /** Stops pushing, ends every stream and shuts the gRPC server down (forcefully after `graceMs`). */
  async close(graceMs = 1000): Promise<void> {
    this.#closed = true;
    this.#debouncer.close();
    for (const c of this.#connections.values()) c.close();
    this.#connections.clear();
    this.metrics.connectedProxies = 0;
    const server = this.#server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #current(): PushState {
    this.#state ??= new PushState(new PushContext(this.#opts.view(), this.#mesh));
    return this.#state;
  }

  #proxyFor(node: DiscoveryRequest["node"]): ProxyView | string {
    if (node === undefined) return "the first request on an ADS stream must carry a node; fix the proxy's bootstrap";
    const checked = proxyFromNode(node, {
      clusterId: this.#opts.clusterId,
      ...(this.#opts.network !== undefined ? { network: this.#opts.network } : {}),
      ...(this.#opts.meshId !== undefined ? { meshId: this.#opts.meshId } : {}),
    });
    return checked.ok ? checked.value : checked.reasons.join("; ");
  }

  #addConnection(conn: Connection): void {
    this.#connections.set(conn.id, conn);
    this.metrics.connectedProxies = this.#connections.size;
    this.#log.info("proxy connected", {
      id: conn.id,
      cluster: conn.proxy.clusterId,
      mode: conn.mode,
      type: conn.proxy.type,
    });
  }

  #removeConnection(conn: Connection | undefined): void {
    if (conn === undefined) return;
    conn.closed = true;
    conn.outbox.length = 0;
    // A write gRPC will never finish must not keep its send slot.
    conn.slot?.();
    if (!this.#connections.delete(conn.id)) return;
    this.metrics.connectedProxies = this.#connections.size;
    this.#log.info("proxy disconnected", { id: conn.id });
  }

  /** One ADS stream of either kind: the first request names the proxy; every request goes to `onRequest`. */
  #serve<Req extends DiscoveryRequest | DeltaDiscoveryRequest>(
    call: grpc.ServerDuplexStream<Req, Buffer>,
    mode: Connection["mode"],
    onRequest: (conn: Connection, req: Req) => void,
  ): void {
    let conn: Connection | undefined;
    const done = () => this.#removeConnection(conn);
    call.on("data", (req: Req) => {
      try {
        if (conn === undefined) {
          const proxy = this.#proxyFor(req.node);
          if (typeof proxy === "string") {
            call.emit("error", Object.assign(new Error(proxy), { code: grpc.status.INVALID_ARGUMENT, details: proxy }));
            return;
          }
          conn = {
            id: `${proxy.id}-${++this.#connCounter}`,
            proxy,
            mode,
            peer: call.getPeer(),
            connectedAt: new Date(),
            istioVersion: metadataString(req.node, "ISTIO_VERSION"),
            watches: new Map(),
            outbox: [],
            writing: false,
            closed: false,
            slot: undefined,
            write: (bytes, written) => call.write(bytes, () => written()),
            close: () => call.end(),
          };
          if (this.#closed) return call.end();
          this.#addConnection(conn);
        }
        onRequest(conn, req);
      } catch (err) {
        this.#log.error(`${mode === "delta" ? "delta " : ""}xDS request failed`, {
          id: conn?.id,
          type: req.typeUrl,
          error: errorMessage(err),
        });
      }
    });
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("error", done);
    call.on("cancelled", done);
    call.on("close", done);
  }

  /** Queues a response; writes leave in order, one at a time per stream, within the server-wide limit. */
  #send(conn: Connection, bytes: Buffer): void {
    if (conn.closed) return;
    conn.outbox.push(bytes);
    this.#pump(conn);
  }

  #pump(conn: Connection): void {
    if (conn.writing || conn.closed) return;
    const bytes = conn.outbox.shift();
    if (bytes === undefined) return;
    conn.writing = true;
    this.#sends.acquire((release) => {
      if (conn.closed) return release();
      conn.slot = release;
      const written = () => {
        release();
        conn.slot = undefined;
        conn.writing = false;
        this.#pump(conn);
      };
      try {
        conn.write(bytes, written);
      } catch (err) {
        this.#log.error("xDS write failed", { id: conn.id, error: errorMessage(err) });
        written();
      }
    });
  }

  #onSotwRequest(conn: Connection, req: DiscoveryRequest): void {
    if (!isTypeUrl(req.typeUrl)) {
      this.#log.debug("ignoring request for a type Isthmus does not serve", { id: conn.id, type: req.typeUrl });
      return;
    }
    const typeUrl = req.typeUrl;
    let w = conn.watches.get(typeUrl);
    const meaning = classifyRequest(w && w.nonce !== "" ? { nonce: w.nonce, subscribed: w.names } : undefined, {
      versionInfo: req.versionInfo,
      responseNonce: req.responseNonce,
      resourceNames: req.resourceNames,
      errorDetail: req.errorDetail,
    });
    switch (meaning.kind) {
      case "stale-nonce":
        return;
      case "ack":
        if (w !== undefined) this.#ack(conn, w, meaning.version, meaning.nonce);
        return;
      case "nack":
        if (w !== undefined) this.#nack(conn, w, meaning.version, meaning.nonce, meaning.message);
        return;
      case "initial":
      case "resubscribe": {
        if (w === undefined) {
          w = { typeUrl, wildcard: false, names: new Set(), nonce: "", version: "", sent: new Map() };
          conn.watches.set(typeUrl, w);
        }
        w.names = new Set(req.resourceNames);
        w.wildcard = w.names.size === 0 && wildcardTypes.has(typeUrl);
        this.#respond(conn, w, this.#current(), { force: true });
        return;
      }
    }
  }

  #ack(conn: Connection, w: Watch, version: string, nonce: string): void {
    w.acked = { version, nonce };
    w.ackedResources = w.sent;
    if (w.trigger !== undefined && nonce === w.nonce) {
      this.metrics.convergence.observe(this.#clock.now() - w.trigger);
      w.trigger = undefined;
    }
    this.#log.debug("ACK", { id: conn.id, type: shortType(w.typeUrl), version, nonce });
  }

  #nack(conn: Connection, w: Watch, version: string, nonce: string, message: string): void {
    w.nacked = { version, nonce, message };
    w.trigger = undefined;
    this.metrics.countNack(shortType(w.typeUrl));
    this.#log.warn("NACK", { id: conn.id, type: shortType(w.typeUrl), version, nonce, message });
  }

  #generate(conn: Connection, w: Watch, state: PushState, only?: ReadonlySet<string>): Encoded[] {
    let names: ReadonlySet<string> | undefined = w.wildcard ? undefined : w.names;
    if (only !== undefined) names = new Set([...(names ?? only)].filter((n) => only.has(n)));
    // A named subscription with no names wants nothing (an empty set would mean "all" to a generator).
    if (names !== undefined && names.size === 0) return [];
    return generate(state.ctx, conn.proxy, w.typeUrl, names).map((g: Generated) => state.encode(w.typeUrl, g));
  }

  #onDeltaRequest(conn: Connection, req: DeltaDiscoveryRequest): void {
    if (!isTypeUrl(req.typeUrl)) {
      this.#log.debug("ignoring delta request for a type Isthmus does not serve", { id: conn.id, type: req.typeUrl });
      return;
    }
    const typeUrl = req.typeUrl;
    let w = conn.watches.get(typeUrl);
    const first = w === undefined;
    if (w === undefined) {
      const subscribe = req.resourceNamesSubscribe;
      w = {
        typeUrl,
        wildcard: (subscribe.length === 0 && wildcardTypes.has(typeUrl)) || subscribe.includes("*"),
        names: new Set(),
        nonce: "",
        version: "",
        sent: new Map<string, SentResource>(
          Object.entries(req.initialResourceVersions).map(([name, hash]): [string, SentResource] => [
            name,
            { name, hash: String(hash) },
          ]),
        ),
      };
      conn.watches.set(typeUrl, w);
    } else if (req.responseNonce !== "" && req.responseNonce === w.nonce) {
      if (req.errorDetail !== undefined)
        this.#nack(conn, w, w.acked?.version ?? "", req.responseNonce, req.errorDetail.message);
      else this.#ack(conn, w, w.version, req.responseNonce);
    }
    let changed = false;
    for (const n of req.resourceNamesSubscribe) {
      if (n === "*") {
        changed ||= !w.wildcard;
        w.wildcard = true;
      } else if (!w.names.has(n)) {
        w.names.add(n);
        changed = true;
      }
    }
    for (const n of req.resourceNamesUnsubscribe) {
      if (n === "*") w.wildcard = false;
      w.names.delete(n);
      w.sent.delete(n);
    }
    if (first || changed) this.#respond(conn, w, this.#current(), { force: first });
  }

  /**
   * Answers one watch from `state`. SotW sends the type's whole state, or with `only` just the
   * named resources that changed (SotW allows that for EDS/RDS); delta sends what changed since
   * the versions the client holds, and the names it no longer has. Nothing is sent when nothing
   * changed, unless `force` (a request must be answered).
   */
  #respond(
    conn: Connection,
    w: Watch,
    state: PushState,
    opts: { readonly trigger?: number; readonly force?: boolean; readonly only?: ReadonlySet<string> },
  ): void {
    const { only } = opts;
    const delta = conn.mode === "delta";
    const full = only === undefined;
    const fresh = this.#generate(conn, w, state, only);
    const updated = fresh.filter((r) => w.sent.get(r.name)?.hash !== r.hash);
    let removed: string[] = [];
    if (full || delta) {
      const freshNames = new Set(fresh.map((r) => r.name));
      removed = [...w.sent.keys()].filter(
        (n) => !freshNames.has(n) && (full || only.has(n)) && (!delta || w.wildcard || w.names.has(n)),
      );
    }
    if (opts.force !== true && updated.length === 0 && removed.length === 0) return;
    let sent: Map<string, SentResource>;
    if (full && !delta) sent = new Map(fresh.map((r) => [r.name, r]));
    else {
      sent = new Map(w.sent);
      for (const r of updated) sent.set(r.name, r);
      for (const n of removed) sent.delete(n);
    }
    const version = full ? versionOf(sent) : chainVersion(w.version, updated, removed);
    let nonce: string;
    let bytes: Buffer;
    if (delta) {
      nonce = `${++this.#nonces}`;
      bytes = encodeDeltaDiscoveryResponse(
        version,
        w.typeUrl,
        nonce,
        updated.map((r) => state.deltaField(r)),
        removed.sort(),
      );
    } else {
      // Same type and version means the same resources in the same order: the same bytes. A
      // stream that already holds this very response (a forced re-send) gets a nonce of its own.
      const key = `${w.typeUrl}\0${full ? "all" : "changed"}\0${version}`;
      const shared = state.sharedResponse(key);
      if (shared !== undefined && shared.nonce !== w.nonce) ({ nonce, bytes } = shared);
      else {
        nonce = `${++this.#nonces}`;
        const toSend = full ? fresh : updated;
        bytes = encodeDiscoveryResponse(
          version,
          w.typeUrl,
          nonce,
          toSend.map((r) => r.field),
        );
        if (shared === undefined) state.keepResponse(key, nonce, bytes);
      }
    }
    w.sent = sent;
    w.version = version;
    w.nonce = nonce;
    w.trigger = opts.trigger;
    this.metrics.countPush(shortType(w.typeUrl));
    this.#send(conn, bytes);
  }

  async #push(merged: MergedPush): Promise<void> {
    if (this.#closed) return;
    const started = this.#clock.now();
    const state = new PushState(new PushContext(this.#opts.view(), this.#mesh));
    this.#state = state;
    // Cluster names whose endpoints may have changed, from the hostnames (both old and new ports).
    const edsNames: string[] = [];
    for (const host of merged.edsHostnames) {
      const ports = new Set(
        [...(state.ctx.view.service(host)?.ports ?? []), ...(this.#lastView?.service(host)?.ports ?? [])].map(
          (p) => p.port,
        ),
      );
      for (const port of ports) edsNames.push(`outbound|${port}||${host}`);
    }
    this.#lastView = state.ctx.view;
    let n = 0;
    for (const conn of [...this.#connections.values()]) {
      if (!this.#connections.has(conn.id)) continue;
      try {
        this.#pushConnection(conn, state, merged, edsNames);
      } catch (err) {
        this.#log.error("push to proxy failed", { id: conn.id, error: errorMessage(err) });
      }
      // Let stream I/O (ACKs, new connections) in between proxies during a large push.
      if (++n % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    this.metrics.observePush(this.#clock.now() - started);
  }

  #pushConnection(conn: Connection, state: PushState, merged: MergedPush, edsNames: readonly string[]): void {
    const trigger = merged.firstEventAt;
    if (merged.full) {
      for (const t of allTypeUrls) {
        const w = conn.watches.get(t);
        if (w !== undefined && w.nonce !== "") this.#respond(conn, w, state, { trigger });
      }
      return;
    }
    const w = conn.watches.get(TypeUrl.ClusterLoadAssignment);
    if (w === undefined || w.nonce === "") return;
    const affected = new Set<string>();
    const has = (name: string) => (w.wildcard ? w.sent.has(name) : w.names.has(name));
    for (const name of edsNames) if (has(name)) affected.add(name);
    if (affected.size > 0) this.#respond(conn, w, state, { trigger, only: affected });
  }
}
