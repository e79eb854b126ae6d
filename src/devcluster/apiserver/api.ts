/**
 * The API semantics of one local cluster, over the Store: metadata (uid, resourceVersion,
 * generation, generateName, finalizers, deletionTimestamp), namespaces and their termination,
 * optimistic concurrency, subresources (status, scale, finalize), patches, selectors, paging,
 * watch, defaulting, validation, admission and virtual resources. Every outcome a client can
 * see is either the stored object or an ApiError carrying the Status body kube-apiserver sends.
 */
import type { Logger } from "../../base/index.js";
import type { Admission, AdmissionAttributes, VirtualResource } from "../api/plugins.js";
import { virtualResourceKey } from "../api/plugins.js";
import {
  type ApiClient,
  ApiError,
  type DeleteOptions,
  type KubeObject,
  type ListOptions,
  type ObjectList,
  type PatchType,
  type ResourceRef,
  type UserInfo,
  type WatchEvent,
  type WatchOptions,
  type WriteOptions,
} from "../api/types.js";
import { admitServiceAccount, applyDefaults, clearStatusOnCreate, type DefaultsContext } from "./defaults.js";
import {
  alreadyExists,
  badRequest,
  conflict,
  expired,
  forbidden,
  internalError,
  invalid,
  methodNotAllowed,
  notFound,
  resourceNotServed,
  tooLargeResourceVersion,
  unsupportedMediaType,
} from "./errors.js";
import { ClusterIpAllocator, NodePortAllocator } from "./ipalloc.js";
import { canonicalOrder, copy, generateName, isRecord, jsonEqual, newUid, specJson, timestamp } from "./meta.js";
import { type Json, jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
import { type CrdSpec, type ResourceInfo, type ResourceRegistry, apiVersionOf } from "./registry.js";
import { appliedBy, fieldSetOf, type ManagedFieldsEntry, removeDropped, withApplied } from "./apply.js";
import { crUnknownFields } from "./crschema.js";
import { checkFields, checkStringMaps, pruneFields } from "./schema.js";
import { type LabelSelector, parseFieldSelector, parseLabelSelector } from "./selectors.js";
import { type Entry, PreconditionFailed, type Store } from "./store.js";
import { validateObject } from "./validation.js";

/** The user in-process callers act as when they name none. */
export const internalUser: UserInfo = {
  username: "system:kube-controller-manager",
  groups: ["system:authenticated"],
};

/** Write options beyond the shared WriteOptions contract. */
export interface EngineWriteOptions extends WriteOptions {
  fieldValidation?: "Strict" | "Warn" | "Ignore";
  /** Receives warnings (unknown fields under fieldValidation=Warn), as HTTP `Warning: 299` headers. */
  onWarning?: (message: string) => void;
}

/** Watch options beyond the shared contract. */
export interface EngineWatchOptions extends WatchOptions {
  /**
   * Watch-list: send the current state as ADDED, then a BOOKMARK annotated
   * `k8s.io/initial-events-end: "true"`, then live events (resourceVersion is then a lower bound only).
   */
  sendInitialEvents?: boolean;
}

export interface EngineOptions {
  store: Store;
  registry: ResourceRegistry;
  serviceCidr: string;
  admission?: Admission;
  virtualResources?: Map<string, VirtualResource>;
  log: Logger;
  /** Pods bound to a node are deleted gracefully (deletionTimestamp first; the node finishes). Default true. */
  gracefulPodDeletion?: boolean;
}

const collOf = (info: ResourceInfo): string => `${info.group}/${info.resource}`;
const nsColl = "/namespaces";
const maxRetries = 8;
/** Unconditional updates retry as long as others keep winning (each round one writer succeeds), like etcd's GuaranteedUpdate. */
const maxUnpinnedRetries = 10_000;

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: "isthmus/1", rv: t.rv, start: t.start })).toString("base64url");
}

function decodeContinue(s: string): ContinueToken | undefined {
  try {
    const v = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as unknown;
    if (isRecord(v) && v.v === "isthmus/1" && typeof v.rv === "number" && typeof v.start === "string") {
      return { rv: v.rv, start: v.start };
    }
  } catch {
    // fall through: reported as a bad continue token below
  }
  return undefined;
}

/** The semantics engine; `client()` views it as an ApiClient for one user. */
export class Engine {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  readonly ips: ClusterIpAllocator;
  readonly nodePorts = new NodePortAllocator();
  readonly #opts: EngineOptions;

  constructor(opts: EngineOptions) {
    this.#opts = opts;
    this.store = opts.store;
    this.registry = opts.registry;
    this.ips = new ClusterIpAllocator(opts.serviceCidr);
  }

  /** Rebuilds what derives from stored objects: served custom resources and allocated ClusterIPs. */
  reindex(): void {
    for (const [, e] of this.store.scan("apiextensions.k8s.io/customresourcedefinitions")) {
      this.registry.syncCrd(e.obj);
    }
    for (const [, e] of this.store.scan("/services")) {
      for (const ip of serviceIps(e.obj)) this.ips.claim(ip);
      for (const p of serviceNodePorts(e.obj)) this.nodePorts.claim(p);
    }
  }

  #info(ref: ResourceRef, verb: string, subresource?: string): ResourceInfo {
    const info = this.registry.lookup(ref);
    if (!info) throw resourceNotServed();
    if (subresource) {
      if (!info.subresources.includes(subresource)) throw resourceNotServed();
    } else if (!info.verbs.includes(verb)) {
      throw methodNotAllowed(verb, info.group, info.resource);
    }
    return info;
  }

  #ns(info: ResourceInfo, namespace: string | undefined): string | undefined {
    if (!info.namespaced) return undefined;
    if (!namespace) throw badRequest(`a namespace is required for ${info.resource}`);
    return namespace;
  }

  #out(info: ResourceInfo, e: Entry): KubeObject {
    const o = JSON.parse(e.json) as KubeObject;
    if (info.crd !== undefined) o.apiVersion = apiVersionOf(info.group, info.version);
    return o;
  }

  async get(ref: ResourceRef, namespace: string | undefined, name: string, subresource?: string): Promise<KubeObject> {
    const info = this.#info(ref, "get", subresource);
    const e = this.store.get(collOf(info), this.#ns(info, namespace), name);
    if (!e) throw notFound(info.group, info.resource, name);
    if (subresource === "scale") return toScale(info, e.obj);
    return this.#out(info, e);
  }

  async list(ref: ResourceRef, opts: ListOptions = {}): Promise<ObjectList> {
    const info = this.#info(ref, "list");
    const r = this.#listEntries(info, opts);
    const out: ObjectList = { items: r.entries.map((e) => this.#out(info, e)), resourceVersion: r.resourceVersion };
    if (r.continue !== undefined) out.continue = r.continue;
    return out;
  }

  /** Like list, but each item as its stored JSON text (no parse/serialize round trip), for the HTTP layer. */
  async listJson(
    ref: ResourceRef,
    opts: ListOptions = {},
  ): Promise<{ items: string[]; resourceVersion: string; continue?: string }> {
    const info = this.#info(ref, "list");
    const r = this.#listEntries(info, opts);
    const items =
      info.crd !== undefined ? r.entries.map((e) => JSON.stringify(this.#out(info, e))) : r.entries.map((e) => e.json);
    return r.continue !== undefined
      ? { items, resourceVersion: r.resourceVersion, continue: r.continue }
      : { items, resourceVersion: r.resourceVersion };
  }

  #listEntries(
    info: ResourceInfo,
    opts: ListOptions,
  ): { entries: Entry[]; resourceVersion: string; continue?: string } {
    const match = this.#matcher(info, opts);
    const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : undefined;
    let rv = this.store.resourceVersion;
    let after: string | undefined;
    if (opts.continue) {
      const tok = decodeContinue(opts.continue);
      if (!tok)
        throw badRequest(`invalid continue token ${JSON.stringify(opts.continue)}: use the value a list returned`);
      if (tok.rv < this.store.compactedResourceVersion) {
        throw expired(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the response to retry.",
        );
      }
      rv = tok.rv;
      after = tok.start;
    } else if (opts.resourceVersion !== undefined && opts.resourceVersion !== "" && opts.resourceVersion !== "0") {
      if (!/^\d+$/.test(opts.resourceVersion)) {
        throw badRequest(`invalid resourceVersion ${JSON.stringify(opts.resourceVersion)}: expected a number`);
      }
      if (Number(opts.resourceVersion) > rv) throw tooLargeResourceVersion(opts.resourceVersion, rv);
    }
    const entries: Entry[] = [];
    let lastKey = "";
    const namespace = info.namespaced ? opts.namespace || undefined : undefined;
    for (const [k, e] of this.store.scan(collOf(info), namespace, after)) {
      if (!match(e.obj)) continue;
      if (limit !== undefined && entries.length >= limit) {
        return { entries, resourceVersion: String(rv), continue: encodeContinue({ rv, start: lastKey }) };
      }
      entries.push(e);
      lastKey = k;
    }
    return { entries, resourceVersion: String(rv) };
  }

  #matcher(info: ResourceInfo, opts: ListOptions): (o: KubeObject) => boolean {
    const labels = parseLabelSelector(opts.labelSelector);
    if (typeof labels === "string") throw badRequest(labels);
    const fields = parseFieldSelector(opts.fieldSelector, info.crd !== undefined ? "" : info.kind);
    if (typeof fields === "string") throw badRequest(fields);
    return (o) => labels(o) && fields(o);
  }

  watch(ref: ResourceRef, opts: EngineWatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    let info: ResourceInfo;
    let match: (o: KubeObject) => boolean;
    let from: number | undefined;
    try {
      info = this.#info(ref, "watch");
      match = this.#matcher(info, opts);
      const rv = opts.resourceVersion ?? "";
      if (rv !== "" && rv !== "0" && !/^\d+$/.test(rv)) {
        throw badRequest(`invalid resourceVersion ${JSON.stringify(rv)}: expected a number`);
      }
      from = rv === "" || rv === "0" || opts.sendInitialEvents === true ? undefined : Number(rv);
    } catch (err) {
      return {
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
      };
    }
    return this.store.watch(
      {
        coll: collOf(info),
        ...(info.namespaced && opts.namespace ? { namespace: opts.namespace } : {}),
        matches: match,
        kind: info.kind,
        apiVersion: apiVersionOf(info.group, info.version),
        rewriteApiVersion: info.crd !== undefined,
      },
      from,
      { bookmarks: opts.allowWatchBookmarks === true, signal, initialEventsEnd: opts.sendInitialEvents === true },
    );
  }

  // ---- writes -------------------------------------------------------------------------------

  async create(ref: ResourceRef, input: KubeObject, opts: EngineWriteOptions, user: UserInfo): Promise<KubeObject> {
    const sub = opts.subresource ?? "";
    const vinfo = this.registry.lookup(ref);
    if (!vinfo) throw resourceNotServed();
    if (sub === "binding" && vinfo.group === "" && vinfo.resource === "pods") return this.#bind(ref, input, opts, user);
    if (vinfo.virtual || sub !== "") {
      const vr = this.#opts.virtualResources?.get(virtualResourceKey(ref, sub));
      if (!vr) {
        if (sub !== "" && !vinfo.subresources.includes(sub)) throw resourceNotServed();
        throw methodNotAllowed("create", vinfo.group, sub ? `${vinfo.resource}/${sub}` : vinfo.resource);
      }
      const ns = vinfo.namespaced ? (input.metadata?.namespace ?? "") : "";
      return vr.create(input, { user, namespace: ns, name: input.metadata?.name ?? "" });
    }
    const info = this.#info(ref, "create");
    const obj = this.#decode(info, input, opts);
    const namespace = this.#ns(info, obj.metadata.namespace);
    if (info.namespaced) obj.metadata.namespace = namespace;
    else delete obj.metadata.namespace;
    if (namespace !== undefined) this.#checkNamespaceOpen(info, namespace, obj.metadata.name ?? "");

    const m = obj.metadata;
    m.uid = newUid();
    m.creationTimestamp = timestamp();
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (info.generation) m.generation = 1;
    else delete m.generation;
    clearStatusOnCreate(info, obj);
    const ctx = this.#defaultsCtx();
    applyDefaults(info, obj, ctx, undefined);
    if (info.group === "" && info.resource === "pods") {
      const saName = (obj.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName || "default";
      const sa = namespace !== undefined ? this.store.get("/serviceaccounts", namespace, saName) : undefined;
      const automount = sa?.obj.automountServiceAccountToken;
      admitServiceAccount(obj, typeof automount === "boolean" ? automount : undefined);
    }

    let current = obj;
    const attrs = (o: KubeObject): AdmissionAttributes => ({
      operation: "CREATE",
      ref,
      kind: { group: info.group, version: info.version, kind: info.kind },
      subresource: "",
      namespace: namespace ?? "",
      name: o.metadata.name ?? "",
      object: o,
      user,
      dryRun: opts.dryRun === true,
    });
    const adm = this.#opts.admission;
    if (adm) {
      const mutated = await adm.mutate(attrs(current), this.client(internalUser));
      if (mutated) {
        current = mutated;
        if (!isRecord(current.metadata)) current.metadata = {};
        // Admission may change the object, not who it is.
        current.metadata.uid = m.uid;
        current.metadata.creationTimestamp = m.creationTimestamp;
        if (namespace !== undefined) current.metadata.namespace = namespace;
        current.apiVersion = obj.apiVersion;
        current.kind = obj.kind;
        pruneFields(info, current);
        applyDefaults(info, current, ctx, undefined);
      }
    }
    if (!current.metadata.name && current.metadata.generateName) {
      current.metadata.name = generateName(current.metadata.generateName);
    }
    const causes = validateObject(info, current, undefined);
    if (causes.length > 0) throw invalid(info.group, info.kind, current.metadata.name ?? "", causes);
    if (adm) await adm.validate(attrs(current), this.client(internalUser));

    // An existing name is AlreadyExists, before any address is claimed for it.
    if (input.metadata.name && this.store.get(collOf(info), namespace, current.metadata.name ?? "")) {
      throw alreadyExists(info.group, info.resource, current.metadata.name ?? "");
    }
    const claimed = this.#allocate(info, current);
    let portUndo: (() => void)[] = [];
    try {
      if (info.group === "" && info.resource === "services") portUndo = this.#allocateNodePorts(current, undefined);
    } catch (err) {
      for (const ip of claimed) this.ips.release(ip);
      throw err;
    }
    current = canonicalOrder(current);
    try {
      if (opts.dryRun) return copy(current);
      let entry: Entry | undefined;
      let durable: Promise<void> = Promise.resolve();
      for (let attempt = 0; ; attempt++) {
        try {
          ({ entry, durable } = this.store.commit(
            collOf(info),
            namespace,
            current.metadata.name ?? "",
            current,
            "absent",
          ));
          break;
        } catch (err) {
          if (!(err instanceof PreconditionFailed)) throw err;
          if (input.metadata.name || !current.metadata.generateName || attempt >= maxRetries) {
            throw alreadyExists(info.group, info.resource, current.metadata.name ?? "");
          }
          current.metadata.name = generateName(current.metadata.generateName);
        }
      }
      claimed.length = 0;
      portUndo = [];
      await durable;
      this.#afterWrite(info, entry.obj, undefined);
      return this.#out(info, entry);
    } finally {
      for (const ip of claimed) this.ips.release(ip);
      for (const u of portUndo) u();
    }
  }

  /** pods/binding: sets spec.nodeName of an unbound pod (what a scheduler does). */
  async #bind(ref: ResourceRef, input: KubeObject, opts: EngineWriteOptions, user: UserInfo): Promise<KubeObject> {
    const info = this.#info(ref, "create", "binding");
    const target = (input as { target?: { kind?: string; name?: string } }).target;
    const name = input.metadata?.name ?? "";
    const ns = this.#ns(info, input.metadata?.namespace);
    if (!target?.name) {
      throw invalid("", "Binding", name, [
        { reason: "FieldValueRequired", message: "Required value", field: "target.name" },
      ]);
    }
    await this.#guaranteedUpdate(info, ref, ns, name, { ...opts, subresource: "binding" }, user, false, (old) => {
      const spec = (isRecord(old.spec) ? old.spec : {}) as { nodeName?: string };
      if (spec.nodeName) {
        throw conflict("", "pods", name, `pod ${name} is already assigned to node "${spec.nodeName}"`);
      }
      const next = copy(old);
      next.spec = { ...spec, nodeName: target.name };
      return next;
    });
    return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 } as unknown as KubeObject;
  }

  /** Copies the input, checks kind/apiVersion, applies field validation (unknown fields). */
  #decode(info: ResourceInfo, input: KubeObject, opts: EngineWriteOptions): KubeObject {
    if (!isRecord(input)) throw badRequest("the request body must be a JSON object");
    const obj = copy(input);
    const av = apiVersionOf(info.group, info.version);
    if (obj.kind !== undefined && obj.kind !== "" && obj.kind !== info.kind) {
      throw badRequest(
        `${obj.kind} in version "${info.version}" cannot be handled as a ${info.kind}: the kind of the object (${obj.kind}) is not ${info.kind}, the kind this resource holds`,
      );
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== "" && obj.apiVersion !== av) {
      const otherVersionOfCr = info.crd !== undefined && obj.apiVersion.startsWith(`${info.group}/`);
      if (!otherVersionOfCr) {
        throw badRequest(
          `the API version in the data (${obj.apiVersion}) does not match the expected API version (${av})`,
        );
      }
    }
    obj.apiVersion = av;
    obj.kind = info.kind;
    if (!isRecord(obj.metadata)) obj.metadata = {};
    this.#checkTypes(info, obj);
    const mode = opts.fieldValidation ?? "Ignore";
    const unknown =
      info.crd !== undefined
        ? crUnknownFields(info.schema, obj, { prune: false, defaults: false })
        : checkFields(info, obj);
    if (unknown.length > 0) {
      if (mode === "Strict") {
        throw badRequest(
          `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: strict decoding error: ${unknown
            .map((f) => `unknown field "${f}"`)
            .join(", ")}`,
        );
      }
      if (mode === "Warn") for (const f of unknown) opts.onWarning?.(`unknown field "${f}"`);
      pruneFields(info, obj);
      if (info.crd !== undefined) crUnknownFields(info.schema, obj, { prune: true, defaults: false });
    }
    return obj;
  }

  /** A value of the wrong type in a string map is a decoding error in Kubernetes: 400, never stored. */
  #checkTypes(info: ResourceInfo, obj: KubeObject): void {
    const wrong = checkStringMaps(info, obj);
    if (wrong !== undefined) {
      throw badRequest(`${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: ${wrong}`);
    }
  }

  #checkNamespaceOpen(info: ResourceInfo, namespace: string, name: string): void {
    const ns = this.store.get(nsColl, undefined, namespace);
    if (!ns) throw notFound("", "namespaces", namespace);
    const phase = (ns.obj.status as { phase?: string } | undefined)?.phase;
    if (ns.obj.metadata.deletionTimestamp || phase === "Terminating") {
      throw forbidden(
        info.group,
        info.resource,
        name,
        `${info.resource}${info.group ? `.${info.group}` : ""} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  #defaultsCtx(): DefaultsContext {
    return { ips: this.ips };
  }

  /**
   * Claims the node ports a NodePort/LoadBalancer Service needs and does not have yet (explicit
   * ones are checked). Returns release functions, so a failed write gives them back.
   */
  #allocateNodePorts(obj: KubeObject, old: KubeObject | undefined): (() => void)[] {
    const spec = (obj.spec ?? {}) as {
      type?: string;
      ports?: { port?: number; protocol?: string; nodePort?: number }[];
    };
    if (spec.type !== "NodePort" && spec.type !== "LoadBalancer") return [];
    const held = new Set(old ? serviceNodePorts(old) : []);
    const undo: (() => void)[] = [];
    const fail = (i: number, value: unknown, reason: string): never => {
      for (const u of undo) u();
      throw invalid("", "Service", obj.metadata.name ?? "", [
        {
          reason: "FieldValueInvalid",
          message: `Invalid value: ${JSON.stringify(value)}: ${reason}`,
          field: `spec.ports[${i}].nodePort`,
        },
      ]);
    };
    for (const [i, p] of (spec.ports ?? []).entries()) {
      if (p.nodePort !== undefined && p.nodePort !== 0) {
        if (held.has(p.nodePort)) continue;
        const got = this.nodePorts.claim(p.nodePort);
        if (!got.ok) fail(i, p.nodePort, got.reason);
        const n = p.nodePort;
        undo.push(() => this.nodePorts.release(n));
        continue;
      }
      const n = this.nodePorts.allocate();
      if (n === undefined) fail(i, 0, "range is full: every node port is allocated");
      else {
        p.nodePort = n;
        undo.push(() => this.nodePorts.release(n));
      }
    }
    return undo;
  }

  /** Claims ClusterIPs for a new Service; returns them so a failed create gives them back. */
  #allocate(info: ResourceInfo, obj: KubeObject): string[] {
    if (info.group !== "" || info.resource !== "services") return [];
    const spec = (obj.spec ?? {}) as { type?: string; clusterIP?: string; clusterIPs?: string[] };
    if (spec.type === "ExternalName" || spec.clusterIP === "None") return [];
    if (spec.clusterIP) {
      const got = this.ips.claim(spec.clusterIP);
      if (!got.ok) {
        throw invalid("", "Service", obj.metadata.name ?? "", [
          {
            reason: "FieldValueInvalid",
            message: `Invalid value: []string{"${spec.clusterIP}"}: failed to allocate IP ${spec.clusterIP}: ${got.reason}`,
            field: "spec.clusterIPs",
          },
        ]);
      }
      spec.clusterIPs = [spec.clusterIP];
      return [spec.clusterIP];
    }
    const got = this.ips.allocate();
    if (!got.ok) throw internalError(`failed to allocate a serviceIP: ${got.reason}`);
    spec.clusterIP = got.ip;
    spec.clusterIPs = [got.ip];
    obj.spec = spec;
    return [got.ip];
  }

  async update(ref: ResourceRef, input: KubeObject, opts: EngineWriteOptions, user: UserInfo): Promise<KubeObject> {
    const sub = opts.subresource ?? "";
    const info = this.#info(ref, "update", sub || undefined);
    if (sub === "token") throw methodNotAllowed("update", info.group, `${info.resource}/token`);
    const decoded = sub === "scale" ? copy(input) : this.#decode(info, input, opts);
    const name = decoded.metadata?.name ?? "";
    if (!name) throw badRequest("metadata.name is required for an update");
    const namespace = this.#ns(info, decoded.metadata?.namespace);
    const userRv = decoded.metadata?.resourceVersion || undefined;
    const written = this.#guaranteedUpdate(info, ref, namespace, name, opts, user, userRv !== undefined, (old) => {
      if (userRv !== undefined && userRv !== old.metadata.resourceVersion) {
        throw conflict(info.group, info.resource, name);
      }
      return this.#deriveNew(info, sub, old, copy(decoded));
    });
    // The scale subresource answers in its own kind.
    return sub === "scale" ? toScale(info, await written) : written;
  }

  /** Builds the object to store from the old one and the client's version, by subresource. */
  #deriveNew(info: ResourceInfo, sub: string, old: KubeObject, incoming: KubeObject): KubeObject {
    if (sub === "status") {
      const next = copy(old);
      if (incoming.status === undefined) delete next.status;
      else next.status = incoming.status;
      return next;
    }
    if (sub === "scale") {
      const replicas = (incoming.spec as { replicas?: unknown } | undefined)?.replicas;
      if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
        throw invalid("autoscaling", "Scale", old.metadata.name ?? "", [
          {
            reason: "FieldValueInvalid",
            message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
            field: "spec.replicas",
          },
        ]);
      }
      const next = copy(old);
      next.spec = { ...(isRecord(next.spec) ? next.spec : {}), replicas };
      return next;
    }
    if (sub === "finalize") {
      const next = copy(old);
      const fins = (incoming.spec as { finalizers?: unknown } | undefined)?.finalizers;
      next.spec = { ...(isRecord(next.spec) ? next.spec : {}), finalizers: Array.isArray(fins) ? fins : [] };
      return next;
    }
    // The main resource: system metadata stays, status stays where it has its own subresource.
    const m = incoming.metadata;
    if (m.uid && m.uid !== old.metadata.uid) {
      throw conflict(
        info.group,
        info.resource,
        old.metadata.name ?? "",
        `Precondition failed: UID in precondition: ${m.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    }
    m.uid = old.metadata.uid;
    m.creationTimestamp = old.metadata.creationTimestamp;
    m.resourceVersion = old.metadata.resourceVersion;
    if (old.metadata.deletionTimestamp) m.deletionTimestamp = old.metadata.deletionTimestamp;
    else delete m.deletionTimestamp;
    if (old.metadata.deletionGracePeriodSeconds !== undefined) {
      m.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
    } else delete m.deletionGracePeriodSeconds;
    if (old.metadata.generation !== undefined) m.generation = old.metadata.generation;
    else delete m.generation;
    if (info.namespaced) m.namespace = old.metadata.namespace;
    if (info.subresources.includes("status")) {
      if (old.status === undefined) delete incoming.status;
      else incoming.status = copy(old.status);
    }
    if (info.group === "" && info.resource === "namespaces") {
      const oldFin = (old.spec as { finalizers?: unknown } | undefined)?.finalizers;
      incoming.spec = { ...(isRecord(incoming.spec) ? incoming.spec : {}) };
      if (oldFin === undefined) delete (incoming.spec as Record<string, unknown>).finalizers;
      else (incoming.spec as Record<string, unknown>).finalizers = copy(oldFin);
    }
    return incoming;
  }

  /**
   * Read-modify-write with retries: `make` derives the new object from the current one; a
   * concurrent write in between retries, unless the caller pinned a resourceVersion (then 409).
   */
  async #guaranteedUpdate(
    info: ResourceInfo,
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    opts: EngineWriteOptions,
    user: UserInfo,
    pinned: boolean,
    make: (old: KubeObject) => KubeObject,
  ): Promise<KubeObject> {
    const sub = opts.subresource ?? "";
    for (let attempt = 0; ; attempt++) {
      const oldEntry = this.store.get(collOf(info), namespace, name);
      if (!oldEntry) throw notFound(info.group, info.resource, name);
      const old = JSON.parse(oldEntry.json) as KubeObject;
      let next = make(JSON.parse(oldEntry.json) as KubeObject);
      next.apiVersion = apiVersionOf(info.group, info.version);
      next.kind = info.kind;
      const ctx = this.#defaultsCtx();
      applyDefaults(info, next, ctx, old);
      const attrs = (o: KubeObject): AdmissionAttributes => ({
        operation: "UPDATE",
        ref,
        kind: { group: info.group, version: info.version, kind: info.kind },
        subresource: sub,
        namespace: namespace ?? "",
        name,
        object: o,
        oldObject: old,
        user,
        dryRun: opts.dryRun === true,
      });
      const adm = this.#opts.admission;
      if (adm) {
        const mutated = await adm.mutate(attrs(next), this.client(internalUser));
        if (mutated) {
          next = mutated;
          if (!isRecord(next.metadata)) next.metadata = {};
          next.metadata.uid = old.metadata.uid;
          next.metadata.name = name;
          if (namespace !== undefined) next.metadata.namespace = namespace;
          next.apiVersion = apiVersionOf(info.group, info.version);
          next.kind = info.kind;
          pruneFields(info, next);
          applyDefaults(info, next, ctx, old);
        }
      }
      const oldFins = old.metadata.finalizers ?? [];
      if (old.metadata.deletionTimestamp) {
        const added = (next.metadata.finalizers ?? []).filter((f) => !oldFins.includes(f));
        if (added.length > 0) {
          throw invalid(info.group, info.kind, name, [
            {
              reason: "FieldValueForbidden",
              message: "Forbidden: no new finalizers can be added if the object is being deleted",
              field: "metadata.finalizers",
            },
          ]);
        }
      }
      const causes = validateObject(info, next, old);
      if (causes.length > 0) throw invalid(info.group, info.kind, name, causes);
      if (adm) await adm.validate(attrs(next), this.client(internalUser));
      if (info.generation && next.metadata.generation !== undefined && specJson(next) !== specJson(old)) {
        next.metadata.generation = (old.metadata.generation ?? 0) + 1;
      }
      next.metadata.resourceVersion = old.metadata.resourceVersion;
      if (jsonEqual(next, old)) return this.#out(info, oldEntry);
      if (opts.dryRun) return next;
      next = canonicalOrder(next);
      const isService = info.group === "" && info.resource === "services" && sub === "";
      let portUndo = isService ? this.#allocateNodePorts(next, old) : [];
      // The last finalizer of an object being deleted is gone: the update completes the deletion.
      // (A pod in graceful deletion has a grace period > 0 and stays until the node deletes it.)
      const finished =
        next.metadata.deletionTimestamp !== undefined &&
        (next.metadata.deletionGracePeriodSeconds ?? 0) === 0 &&
        !isUnfinalized(info, next);
      try {
        const { entry, durable } = this.store.commit(
          collOf(info),
          namespace,
          name,
          finished ? undefined : next,
          old.metadata.resourceVersion,
        );
        portUndo = [];
        if (isService && !finished) {
          const kept = new Set(serviceNodePorts(next));
          for (const p of serviceNodePorts(old)) if (!kept.has(p)) this.nodePorts.release(p);
        }
        await durable;
        this.#afterWrite(info, finished ? undefined : entry.obj, old);
        return this.#out(info, entry);
      } catch (err) {
        for (const u of portUndo) u();
        if (!(err instanceof PreconditionFailed)) throw err;
        if (err.why === "missing") throw notFound(info.group, info.resource, name);
        if (pinned || attempt >= maxUnpinnedRetries) throw conflict(info.group, info.resource, name);
      }
    }
  }

  async patch(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    body: unknown,
    opts: EngineWriteOptions,
    user: UserInfo,
  ): Promise<KubeObject> {
    const sub = opts.subresource ?? "";
    const info = this.#info(ref, "patch", sub || undefined);
    if (sub === "token" || sub === "finalize") throw methodNotAllowed("patch", info.group, `${info.resource}/${sub}`);
    const ns = this.#ns(info, namespace);
    if (type === "application/strategic-merge-patch+json" && info.crd !== undefined) {
      throw unsupportedMediaType(
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
      );
    }
    const written = this.#guaranteedUpdate(info, ref, ns, name, opts, user, false, (old) => {
      const base = (sub === "scale" ? toScale(info, old) : old) as unknown as Json;
      let result: Json;
      if (type === "application/merge-patch+json") {
        if (!isRecord(body)) throw badRequest("a JSON merge patch must be a JSON object");
        result = mergePatch(base, body as Json);
      } else {
        const r =
          type === "application/json-patch+json" ? jsonPatch(base, body) : strategicMergePatch(base, body as Json);
        if (!r.ok) {
          if (r.malformed) throw badRequest(r.message);
          throw invalid(info.group, info.kind, name, [{ reason: "FieldValueInvalid", message: r.message }]);
        }
        result = r.value;
      }
      if (!isRecord(result)) throw badRequest("the patched object is not a JSON object");
      const patched = result as unknown as KubeObject;
      if (!isRecord(patched.metadata)) patched.metadata = {};
      const rv = patched.metadata.resourceVersion;
      if (rv !== undefined && rv !== old.metadata.resourceVersion) {
        throw conflict(info.group, info.resource, name);
      }
      if (sub === "scale") return this.#deriveNew(info, sub, old, patched);
      this.#checkTypes(info, patched);
      if (sub !== "status") {
        const unknown =
          info.crd !== undefined
            ? crUnknownFields(info.schema, patched, { prune: false, defaults: false })
            : checkFields(info, patched);
        if (unknown.length > 0 && opts.fieldValidation === "Strict") {
          throw badRequest(
            `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: strict decoding error: ${unknown
              .map((f) => `unknown field "${f}"`)
              .join(", ")}`,
          );
        }
        if (unknown.length > 0 && opts.fieldValidation === "Warn") {
          for (const f of unknown) opts.onWarning?.(`unknown field "${f}"`);
        }
        if (unknown.length > 0) {
          pruneFields(info, patched);
          if (info.crd !== undefined) crUnknownFields(info.schema, patched, { prune: true, defaults: false });
        }
      }
      if (patched.metadata.name !== undefined && patched.metadata.name !== name) {
        throw badRequest(
          `the name of the object (${patched.metadata.name}) does not match the name on the URL (${name})`,
        );
      }
      patched.metadata.name = name;
      return this.#deriveNew(info, sub, old, patched);
    });
    return sub === "scale" ? toScale(info, await written) : written;
  }

  /**
   * Server-side apply (application/apply-patch+yaml, body already decoded): creates the object or
   * merges the applied configuration into it, removing what the same field manager applied before
   * and applies no more. Unknown fields are refused unless fieldValidation says otherwise.
   */
  async apply(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: EngineWriteOptions & { force?: boolean },
    user: UserInfo,
  ): Promise<KubeObject> {
    const info = this.#info(ref, "patch");
    if (!isRecord(body)) throw badRequest("an apply patch must be an object (the decoded YAML or JSON body)");
    const manager = opts.fieldManager;
    if (!manager) {
      throw invalid("meta.k8s.io", "PatchOptions", "", [
        { reason: "FieldValueRequired", message: "Required value: is required for apply patch", field: "fieldManager" },
      ]);
    }
    const ns = this.#ns(info, namespace);
    const raw = copy(body) as KubeObject;
    if (!isRecord(raw.metadata)) raw.metadata = {};
    if (raw.metadata.name !== undefined && raw.metadata.name !== name) {
      throw badRequest(`the name of the object (${raw.metadata.name}) does not match the name on the URL (${name})`);
    }
    raw.metadata.name = name;
    if (ns !== undefined) raw.metadata.namespace = ns;
    const applied = this.#decode(info, raw, { ...opts, fieldValidation: opts.fieldValidation ?? "Strict" });
    delete applied.metadata.managedFields;
    delete applied.metadata.resourceVersion;
    const fields = fieldSetOf(applied);
    const entry: ManagedFieldsEntry = {
      manager,
      operation: "Apply",
      apiVersion: apiVersionOf(info.group, info.version),
      time: timestamp(),
      fieldsType: "FieldsV1",
      fieldsV1: fields,
    };
    if (!this.store.get(collOf(info), ns, name)) {
      try {
        return await this.create(
          ref,
          { ...applied, metadata: { ...applied.metadata, managedFields: [entry] } },
          { ...opts, fieldValidation: "Ignore", subresource: "" },
          user,
        );
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 409 && err.reason === "AlreadyExists")) throw err;
      }
    }
    return this.#guaranteedUpdate(info, ref, ns, name, { ...opts, subresource: "" }, user, false, (old) => {
      const prev = appliedBy(old, manager);
      if (prev && jsonEqual(prev.fieldsV1, fields)) entry.time = prev.time;
      const live = copy(old) as unknown as Record<string, unknown>;
      if (prev) removeDropped(live, prev.fieldsV1, fields);
      let merged: Json;
      if (info.crd !== undefined) merged = mergePatch(live as Json, applied as unknown as Json);
      else {
        const r = strategicMergePatch(live as Json, applied as unknown as Json);
        if (!r.ok) throw invalid(info.group, info.kind, name, [{ reason: "FieldValueInvalid", message: r.message }]);
        merged = r.value;
      }
      const next = merged as unknown as KubeObject;
      next.metadata.managedFields = withApplied(old, entry);
      return this.#deriveNew(info, "", old, next);
    });
  }

  async delete(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions,
    user: UserInfo,
    dryRun = false,
  ): Promise<KubeObject> {
    const info = this.#info(ref, "delete");
    const ns = this.#ns(info, namespace);
    for (let attempt = 0; ; attempt++) {
      const e = this.store.get(collOf(info), ns, name);
      if (!e) throw notFound(info.group, info.resource, name);
      const old = JSON.parse(e.json) as KubeObject;
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== old.metadata.uid) {
        throw conflict(
          info.group,
          info.resource,
          name,
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`,
        );
      }
      if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
        throw conflict(
          info.group,
          info.resource,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
        );
      }
      const adm = this.#opts.admission;
      if (adm && attempt === 0) {
        await adm.validate(
          {
            operation: "DELETE",
            ref,
            kind: { group: info.group, version: info.version, kind: info.kind },
            subresource: "",
            namespace: ns ?? "",
            name,
            oldObject: old,
            user,
            dryRun,
          },
          this.client(internalUser),
        );
      }
      // Decide: mark for deletion (finalizers, namespaces, graceful pods) or remove now.
      let next: KubeObject | undefined;
      const isNamespace = info.group === "" && info.resource === "namespaces";
      const now = timestamp();
      if (isNamespace) {
        if (!old.metadata.deletionTimestamp) {
          next = copy(old);
          next.metadata.deletionTimestamp = now;
          next.metadata.deletionGracePeriodSeconds = 0;
          next.status = { ...(isRecord(next.status) ? next.status : {}), phase: "Terminating" };
          if (!isUnfinalized(info, next)) next = undefined;
        } else return old;
      } else if (
        propagationFinalizer(opts) !== undefined &&
        !(old.metadata.finalizers ?? []).includes(propagationFinalizer(opts) ?? "")
      ) {
        // Foreground/Orphan deletion: the garbage collector finishes it, through this finalizer.
        const fin = propagationFinalizer(opts) ?? "";
        next = copy(old);
        next.metadata.finalizers = [
          ...(old.metadata.finalizers ?? []).filter((f) => f !== "orphan" && f !== "foregroundDeletion"),
          fin,
        ];
        next.metadata.deletionTimestamp = old.metadata.deletionTimestamp ?? now;
        next.metadata.deletionGracePeriodSeconds = 0;
      } else if ((old.metadata.finalizers ?? []).length > 0) {
        if (old.metadata.deletionTimestamp) return old;
        next = copy(old);
        next.metadata.deletionTimestamp = now;
        next.metadata.deletionGracePeriodSeconds = 0;
      } else if (info.group === "" && info.resource === "pods" && this.#opts.gracefulPodDeletion !== false) {
        const spec = (old.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
        const grace = opts.gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30;
        if (spec.nodeName && grace > 0) {
          const phase = (old.status as { phase?: string } | undefined)?.phase;
          if (phase !== "Succeeded" && phase !== "Failed") {
            const cur = old.metadata.deletionGracePeriodSeconds;
            if (old.metadata.deletionTimestamp && cur !== undefined && cur <= grace) return old;
            next = copy(old);
            next.metadata.deletionTimestamp = timestamp(Date.now() + grace * 1000);
            next.metadata.deletionGracePeriodSeconds = grace;
          }
        }
      }
      if (dryRun) return next ?? old;
      try {
        if (next) {
          const { entry, durable } = this.store.commit(collOf(info), ns, name, next, old.metadata.resourceVersion);
          await durable;
          return this.#out(info, entry);
        }
        const { durable } = this.store.commit(collOf(info), ns, name, undefined, old.metadata.resourceVersion);
        await durable;
        this.#afterWrite(info, undefined, old);
        // As kube-apiserver answers: the object as it was last stored (the DELETED event carries the new resourceVersion).
        if (info.crd !== undefined) old.apiVersion = apiVersionOf(info.group, info.version);
        return old;
      } catch (err) {
        if (!(err instanceof PreconditionFailed)) throw err;
        if (err.why === "missing") throw notFound(info.group, info.resource, name);
        if (attempt >= maxUnpinnedRetries) throw conflict(info.group, info.resource, name);
      }
    }
  }

  /** Deletes every object matching the list options; returns what was deleted (or marked). */
  async deleteCollection(
    ref: ResourceRef,
    listOpts: ListOptions,
    opts: DeleteOptions,
    user: UserInfo,
    dryRun = false,
  ): Promise<ObjectList> {
    const info = this.#info(ref, "deletecollection");
    const listed = await this.list(ref, { ...listOpts, limit: 0 });
    const items: KubeObject[] = [];
    for (const o of listed.items) {
      try {
        items.push(
          await this.delete(
            ref,
            info.namespaced ? o.metadata.namespace : undefined,
            o.metadata.name ?? "",
            opts,
            user,
            dryRun,
          ),
        );
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) continue;
        throw err;
      }
    }
    return { items, resourceVersion: String(this.store.resourceVersion) };
  }

  /** Effects of a committed write on derived state (served CRDs, ClusterIPs). */
  #afterWrite(info: ResourceInfo, now: KubeObject | undefined, old: KubeObject | undefined): void {
    if (info.group === "apiextensions.k8s.io" && info.resource === "customresourcedefinitions") {
      if (now) this.registry.syncCrd(now);
      else if (old) void this.#dropCrd(old);
    }
    if (info.group === "" && info.resource === "services" && !now && old) {
      for (const ip of serviceIps(old)) this.ips.release(ip);
      for (const p of serviceNodePorts(old)) this.nodePorts.release(p);
    }
  }

  /** A CRD is gone: its custom resources go with it (each with a DELETED event), then it stops being served. */
  async #dropCrd(crd: KubeObject): Promise<void> {
    const spec = (crd.spec ?? {}) as CrdSpec;
    const coll = `${spec.group ?? ""}/${spec.names?.plural ?? ""}`;
    const keys = [...this.store.scan(coll)].map(([k]) => k);
    const pending: Promise<void>[] = [];
    for (const k of keys) {
      const slash = k.indexOf("/");
      const ns = k.slice(0, slash) || undefined;
      try {
        pending.push(this.store.commit(coll, ns, k.slice(slash + 1), undefined, "present").durable);
      } catch {
        // already gone
      }
    }
    this.registry.removeCrd(crd.metadata.name ?? "");
    try {
      await Promise.all(pending);
    } catch (err) {
      this.#opts.log.error("could not persist the removal of custom resources", { crd: crd.metadata.name, err });
    }
  }

  /** An ApiClient acting as `user` (default: the internal controller-manager user). */
  client(user: UserInfo = internalUser): LocalApiClient {
    return new EngineClient(this, user);
  }
}

/** The finalizer a propagationPolicy asks the garbage collector to act on, if any. */
function propagationFinalizer(opts: DeleteOptions): string | undefined {
  if (opts.propagationPolicy === "Foreground") return "foregroundDeletion";
  if (opts.propagationPolicy === "Orphan") return "orphan";
  return undefined;
}

/** True while an object is still held by finalizers (for namespaces: spec.finalizers too). */
function isUnfinalized(info: ResourceInfo, obj: KubeObject): boolean {
  if ((obj.metadata.finalizers ?? []).length > 0) return true;
  if (info.group === "" && info.resource === "namespaces") {
    const f = (obj.spec as { finalizers?: unknown[] } | undefined)?.finalizers;
    return Array.isArray(f) && f.length > 0;
  }
  return false;
}

function serviceIps(svc: KubeObject): string[] {
  const spec = (svc.spec ?? {}) as { clusterIP?: string; clusterIPs?: string[] };
  const ips = new Set<string>();
  for (const ip of [spec.clusterIP, ...(spec.clusterIPs ?? [])]) if (ip && ip !== "None") ips.add(ip);
  return [...ips];
}

function serviceNodePorts(svc: KubeObject): number[] {
  const ports = (svc.spec as { ports?: { nodePort?: number }[] } | undefined)?.ports ?? [];
  return ports.map((p) => p.nodePort).filter((n): n is number => typeof n === "number" && n > 0);
}

/** Formats a structured selector as the string form Scale.status.selector uses. */
export function selectorString(sel: LabelSelector | undefined): string {
  if (!sel) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {}).sort(([a], [b]) => a.localeCompare(b)))
    parts.push(`${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const vals = [...(e.values ?? [])].sort().join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${vals})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${vals})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

/** The autoscaling/v1 Scale view of a Deployment or ReplicaSet. */
function toScale(info: ResourceInfo, obj: KubeObject): KubeObject {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: LabelSelector };
  const status = (obj.status ?? {}) as { replicas?: number };
  const m = obj.metadata;
  void info;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: m.name,
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, selector: selectorString(spec.selector) },
  };
}

/**
 * An ApiClient bound to one user, plus what the HTTP layer needs beyond the shared contract
 * (deletecollection, subresource reads, field validation and warnings).
 */
export interface LocalApiClient extends ApiClient {
  readonly user: UserInfo;
  watch(ref: ResourceRef, opts: EngineWatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent>;
  getSubresource(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    subresource: string,
  ): Promise<KubeObject>;
  create(ref: ResourceRef, obj: KubeObject, opts?: EngineWriteOptions): Promise<KubeObject>;
  update(ref: ResourceRef, obj: KubeObject, opts?: EngineWriteOptions): Promise<KubeObject>;
  patch(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts?: EngineWriteOptions,
  ): Promise<KubeObject>;
  delete(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    opts?: DeleteOptions & { dryRun?: boolean },
  ): Promise<KubeObject>;
  deleteCollection(ref: ResourceRef, opts?: ListOptions & DeleteOptions & { dryRun?: boolean }): Promise<ObjectList>;
  /** Server-side apply (see Engine.apply); `body` is the decoded apply-patch document. */
  apply(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts?: EngineWriteOptions & { force?: boolean },
  ): Promise<KubeObject>;
  /** A list whose items are the stored JSON texts, for serving large lists without a parse/serialize round trip. */
  listJson(
    ref: ResourceRef,
    opts?: ListOptions,
  ): Promise<{ items: string[]; resourceVersion: string; continue?: string }>;
}

class EngineClient implements LocalApiClient {
  readonly #e: Engine;
  readonly user: UserInfo;
  constructor(engine: Engine, user: UserInfo) {
    this.#e = engine;
    this.user = user;
  }
  get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObject> {
    return this.#e.get(ref, namespace, name);
  }
  getSubresource(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    subresource: string,
  ): Promise<KubeObject> {
    return this.#e.get(ref, namespace, name, subresource);
  }
  list(ref: ResourceRef, opts?: ListOptions): Promise<ObjectList> {
    return this.#e.list(ref, opts);
  }
  listJson(
    ref: ResourceRef,
    opts?: ListOptions,
  ): Promise<{ items: string[]; resourceVersion: string; continue?: string }> {
    return this.#e.listJson(ref, opts);
  }
  apply(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: EngineWriteOptions & { force?: boolean } = {},
  ): Promise<KubeObject> {
    return this.#e.apply(ref, namespace, name, body, opts, opts.user ?? this.user);
  }
  watch(ref: ResourceRef, opts: EngineWatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    return this.#e.watch(ref, opts, signal);
  }
  create(ref: ResourceRef, obj: KubeObject, opts: EngineWriteOptions = {}): Promise<KubeObject> {
    return this.#e.create(ref, obj, opts, opts.user ?? this.user);
  }
  update(ref: ResourceRef, obj: KubeObject, opts: EngineWriteOptions = {}): Promise<KubeObject> {
    return this.#e.update(ref, obj, opts, opts.user ?? this.user);
  }
  patch(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: EngineWriteOptions = {},
  ): Promise<KubeObject> {
    return this.#e.patch(ref, namespace, name, type, patch, opts, opts.user ?? this.user);
  }
  delete(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions & { dryRun?: boolean } = {},
  ): Promise<KubeObject> {
    return this.#e.delete(ref, namespace, name, opts, opts.user ?? this.user, opts.dryRun === true);
  }
  deleteCollection(
    ref: ResourceRef,
    opts: ListOptions & DeleteOptions & { dryRun?: boolean } = {},
  ): Promise<ObjectList> {
    return this.#e.deleteCollection(ref, opts, opts, opts.user ?? this.user, opts.dryRun === true);
  }
}
