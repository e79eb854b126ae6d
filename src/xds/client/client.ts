/**
 * A state-of-the-world ADS client over grpc-js: subscribes per type, applies responses (LDS/CDS
 * replace the whole set; EDS/RDS update by name), ACKs what it accepts and NACKs with a reason what
 * `validate` rejects (keeping the last good resources), and reconnects with back-off, re-sending
 * its subscriptions with the last accepted versions. For tests, debug tools and the sidecar.
 */
import { EventEmitter } from "node:events";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { Backoff, errorMessage, type Logger, silentLogger } from "../../base/index.js";
import { NodeSchema } from "../../gen/envoy/config/core/v3/base_pb.js";
import {
  type DiscoveryRequest,
  DiscoveryRequestSchema,
  type DiscoveryResponse,
} from "../../gen/envoy/service/discovery/v3/discovery_pb.js";
import { TypeUrl } from "../resources/common.js";
import { xdsRegistry } from "../resources/generate.js";
import { adsServiceDefinition } from "../server/ads-service.js";

export interface XdsClientNode {
  /** Istio node ID, e.g. `sidecar~10.0.0.5~sleep-1.sample~sample.svc.cluster.local`. */
  readonly id: string;
  readonly cluster?: string;
  /** CLUSTER_ID, NETWORK, MESH_ID, LABELS, NAMESPACE, INSTANCE_IPS, GENERATOR ... */
  readonly metadata?: JsonObject;
  readonly userAgentName?: string;
}

export interface XdsClientOptions {
  /** `host:port` of the control plane. */
  readonly target: string;
  readonly node: XdsClientNode;
  /** Default: plaintext. */
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  /**
   * Checks the resources of a response (the complete set the type would hold after applying it).
   * Returning a string NACKs the response with that reason; the previous resources stay.
   */
  readonly validate?: (typeUrl: string, resources: ReadonlyMap<string, Any>) => string | undefined;
  /** Reconnect back-off bounds; default 100 ms doubling to 10 s. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  readonly log?: Logger;
}

/** An accepted response: the type's resources after applying it, and which names it touched. */
export interface XdsUpdate {
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly nonce: string;
  readonly resources: ReadonlyMap<string, Any>;
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

export interface XdsNack {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly versionInfo: string;
  readonly message: string;
}

type ClientEvents = {
  update: [XdsUpdate];
  nack: [XdsNack];
  connected: [];
  disconnected: [string];
};

interface TypeState {
  names: string[];
  version: string;
  nonce: string;
  resources: Map<string, Any>;
}

/**
 * The xDS name of a packed resource (`name`, or `cluster_name` for a ClusterLoadAssignment). All four
 * types keep it in field 1, which serializers write first, so it is read from the bytes without
 * decoding the message; anything else falls back to a full decode.
 */
export function resourceName(any: Any): string {
  const b = any.value;
  if (b.length > 1 && b[0] === 0x0a) {
    let len = 0;
    let shift = 0;
    let i = 1;
    for (; i < b.length && i < 6; i++) {
      const byte = b[i] ?? 0;
      len |= (byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
    }
    if (i + 1 + len <= b.length) return utf8.decode(b.subarray(i + 1, i + 1 + len));
  }
  const msg = anyUnpack(any, xdsRegistry) as { name?: unknown; clusterName?: unknown } | undefined;
  if (msg === undefined) return "";
  if (typeof msg.name === "string") return msg.name;
  return typeof msg.clusterName === "string" ? msg.clusterName : "";
}

const utf8 = new TextDecoder();

const fullStateTypes: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);

export class XdsClient extends EventEmitter<ClientEvents> {
  readonly #opts: XdsClientOptions;
  readonly #log: Logger;
  readonly #types = new Map<string, TypeState>();
  readonly #backoff: Backoff;
  #client: grpc.Client | undefined;
  #call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #started = false;

  constructor(opts: XdsClientOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
    this.#backoff = new Backoff(opts.backoffMinMs ?? 100, opts.backoffMaxMs ?? 10_000);
  }

  /** Opens the stream (and keeps reopening it until close()). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const Ctor = grpc.makeGenericClientConstructor(adsServiceDefinition, "AggregatedDiscoveryService");
    this.#client = new Ctor(
      this.#opts.target,
      this.#opts.credentials ?? grpc.credentials.createInsecure(),
      this.#opts.channelOptions ?? {},
    );
    this.#connect();
  }

  /** Sets the names wanted for a type (empty: wildcard, for LDS/CDS). Sends the request at once when connected. */
  subscribe(typeUrl: string, names: readonly string[] = []): void {
    const sorted = [...new Set(names)].sort();
    let st = this.#types.get(typeUrl);
    if (st === undefined) {
      st = { names: sorted, version: "", nonce: "", resources: new Map() };
      this.#types.set(typeUrl, st);
    } else {
      if (st.names.join("\n") === sorted.join("\n")) return;
      st.names = sorted;
      if (!fullStateTypes.has(typeUrl))
        for (const n of [...st.resources.keys()]) if (!sorted.includes(n)) st.resources.delete(n);
    }
    this.#send(typeUrl, st, this.#isFirstRequest());
  }

  /** The accepted resources of a type, by name. */
  resources(typeUrl: string): ReadonlyMap<string, Any> {
    return this.#types.get(typeUrl)?.resources ?? new Map();
  }

  /** The last accepted version of a type ("" before the first). */
  version(typeUrl: string): string {
    return this.#types.get(typeUrl)?.version ?? "";
  }

  /** Resolves with the first accepted update of `typeUrl` that satisfies `pred` (checking the current state first). */
  waitFor(
    typeUrl: string,
    pred: (resources: ReadonlyMap<string, Any>) => boolean,
    signal?: AbortSignal,
  ): Promise<XdsUpdate | undefined> {
    if (this.#types.has(typeUrl) && this.version(typeUrl) !== "" && pred(this.resources(typeUrl)))
      return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const onUpdate = (u: XdsUpdate) => {
        if (u.typeUrl !== typeUrl || !pred(u.resources)) return;
        this.off("update", onUpdate);
        signal?.removeEventListener("abort", onAbort);
        resolve(u);
      };
      const onAbort = () => {
        this.off("update", onUpdate);
        reject(signal?.reason);
      };
      this.on("update", onUpdate);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Ends the stream and stops reconnecting. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#call?.cancel();
    this.#call = undefined;
    this.#client?.close();
  }

  #nodeSent = false;
  #isFirstRequest(): boolean {
    return !this.#nodeSent;
  }

  #connect(): void {
    if (this.#closed || this.#client === undefined) return;
    const client = this.#client;
    const call = client.makeBidiStreamRequest(
      adsServiceDefinition.StreamAggregatedResources.path,
      adsServiceDefinition.StreamAggregatedResources.requestSerialize,
      adsServiceDefinition.StreamAggregatedResources.responseDeserialize,
    ) as grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
    this.#call = call;
    this.#nodeSent = false;
    let gotResponse = false;
    call.on("data", (resp: DiscoveryResponse) => {
      if (!gotResponse) {
        gotResponse = true;
        this.#backoff.reset();
        this.emit("connected");
      }
      try {
        this.#onResponse(resp);
      } catch (err) {
        this.#log.error("cannot apply xDS response", { type: resp.typeUrl, error: errorMessage(err) });
      }
    });
    let ended = false;
    const onEnd = (why: string) => {
      if (ended || this.#call !== call) return;
      ended = true;
      this.#call = undefined;
      this.emit("disconnected", why);
      if (this.#closed) return;
      const wait = this.#backoff.next();
      this.#log.info("ADS stream ended; reconnecting", { target: this.#opts.target, reason: why, inMs: wait });
      this.#timer = setTimeout(() => this.#connect(), wait);
    };
    call.on("error", (err: Error) => onEnd(err.message));
    call.on("end", () => onEnd("stream ended by the server"));
    // Re-send every subscription on the new stream, with the versions we hold but no nonce.
    for (const [typeUrl, st] of this.#types) {
      st.nonce = "";
      this.#send(typeUrl, st, this.#isFirstRequest());
    }
  }

  #send(typeUrl: string, st: TypeState, withNode: boolean, errorMessageText?: string): void {
    const call = this.#call;
    if (call === undefined) return;
    const n = this.#opts.node;
    const req = create(DiscoveryRequestSchema, {
      versionInfo: st.version,
      typeUrl,
      resourceNames: st.names,
      responseNonce: st.nonce,
      ...(withNode
        ? {
            node: create(NodeSchema, {
              id: n.id,
              cluster: n.cluster ?? "",
              metadata: n.metadata ?? {},
              userAgentName: n.userAgentName ?? "isthmus",
              locality: {},
            }),
          }
        : {}),
      ...(errorMessageText !== undefined
        ? { errorDetail: { code: grpc.status.INVALID_ARGUMENT, message: errorMessageText } }
        : {}),
    });
    if (withNode) this.#nodeSent = true;
    call.write(req);
  }

  #onResponse(resp: DiscoveryResponse): void {
    const st = this.#types.get(resp.typeUrl);
    if (st === undefined) return;
    const incoming = new Map<string, Any>();
    for (const any of resp.resources) incoming.set(resourceName(any), any);
    const next = fullStateTypes.has(resp.typeUrl) ? new Map<string, Any>() : new Map(st.resources);
    for (const [name, any] of incoming) next.set(name, any);
    const removed = [...st.resources.keys()].filter((n) => !next.has(n));
    const reason = this.#opts.validate?.(resp.typeUrl, next);
    st.nonce = resp.nonce;
    if (reason !== undefined) {
      this.#log.warn("NACK", { type: resp.typeUrl, nonce: resp.nonce, reason });
      this.#send(resp.typeUrl, st, false, reason);
      this.emit("nack", { typeUrl: resp.typeUrl, nonce: resp.nonce, versionInfo: resp.versionInfo, message: reason });
      return;
    }
    st.resources = next;
    st.version = resp.versionInfo;
    this.#send(resp.typeUrl, st, false);
    this.emit("update", {
      typeUrl: resp.typeUrl,
      versionInfo: resp.versionInfo,
      nonce: resp.nonce,
      resources: next,
      changed: [...incoming.keys()].sort(),
      removed,
    });
  }
}
