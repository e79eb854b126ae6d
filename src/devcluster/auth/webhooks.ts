/**
 * Dynamic admission: the mutating and validating webhooks that MutatingWebhookConfiguration and
 * ValidatingWebhookConfiguration objects declare, matched and called (AdmissionReview v1 over
 * HTTPS, verified against each webhook's caBundle) the way kube-apiserver does. Matching is
 * pure (webhookMatchesRequest); calling is the only I/O besides reading configurations,
 * namespaces and Services through ApiClient.
 */
import { randomUUID } from "node:crypto";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { errorMessage, type Logger, silentLogger } from "../../base/index.js";
import { asLabelSelector, type LabelSelector, matchLabelSelector } from "../api/label-selector.js";
import type { Admission, AdmissionAttributes } from "../api/plugins.js";
import { type ApiClient, ApiError, isApiError, type KubeObject, Resources } from "../api/types.js";
import { badRequest, failureStatus, internalError } from "../apiserver/errors.js";
import { rec, str, strings } from "./fields.js";
import { applyJsonPatch } from "./json-patch.js";
import { WatchedCollection } from "./watched-collection.js";

/** One rule of a webhook (admissionregistration.k8s.io/v1 RuleWithOperations). */
export interface WebhookRule {
  operations: string[];
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
  /** "*" (default), "Cluster" or "Namespaced". */
  scope: string;
}

/** A webhook as read from its configuration, with the v1 defaults filled in. */
export interface Webhook {
  /** The configuration object's name; mutating webhooks run in order of it, then of position. */
  configurationName: string;
  name: string;
  clientConfig: {
    url?: string;
    service?: { namespace: string; name: string; port: number; path: string };
    /** PEM bundle (decoded from the object's base64). Empty: the system's trusted roots. */
    caBundle: string;
  };
  rules: WebhookRule[];
  failurePolicy: "Fail" | "Ignore";
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
}

/** Reads the webhooks of one configuration object, applying admissionregistration/v1 defaults. */
export function webhooksOf(config: KubeObject): Webhook[] {
  const hooks = Array.isArray(config.webhooks) ? config.webhooks : [];
  return hooks.map((raw): Webhook => {
    const h = rec(raw);
    const cc = rec(h.clientConfig);
    const svc = cc.service === undefined ? undefined : rec(cc.service);
    const timeout = typeof h.timeoutSeconds === "number" ? h.timeoutSeconds : 10;
    return {
      configurationName: config.metadata.name ?? "",
      name: str(h.name),
      clientConfig: {
        ...(str(cc.url) ? { url: str(cc.url) } : {}),
        ...(svc
          ? {
              service: {
                namespace: str(svc.namespace),
                name: str(svc.name),
                port: typeof svc.port === "number" ? svc.port : 443,
                path: str(svc.path),
              },
            }
          : {}),
        caBundle: str(cc.caBundle) ? Buffer.from(str(cc.caBundle), "base64").toString("utf8") : "",
      },
      rules: (Array.isArray(h.rules) ? h.rules : []).map((r) => {
        const o = rec(r);
        return {
          operations: strings(o.operations),
          apiGroups: strings(o.apiGroups),
          apiVersions: strings(o.apiVersions),
          resources: strings(o.resources),
          scope: str(o.scope) || "*",
        };
      }),
      failurePolicy: h.failurePolicy === "Ignore" ? "Ignore" : "Fail",
      ...(asLabelSelector(h.namespaceSelector) ? { namespaceSelector: asLabelSelector(h.namespaceSelector) } : {}),
      ...(asLabelSelector(h.objectSelector) ? { objectSelector: asLabelSelector(h.objectSelector) } : {}),
      sideEffects: str(h.sideEffects) || "Unknown",
      // kube-apiserver bounds the timeout to 1..30 s.
      timeoutSeconds: Math.min(30, Math.max(1, timeout)),
      admissionReviewVersions: strings(h.admissionReviewVersions),
    };
  });
}

function isNamespaceRequest(attrs: AdmissionAttributes): boolean {
  return attrs.ref.group === "" && attrs.ref.resource === "namespaces";
}

/** True when one of the webhook's rules covers the request (operation, group, version, resource/subresource, scope). */
export function rulesMatch(hook: Webhook, attrs: AdmissionAttributes): boolean {
  const has = (list: string[], v: string) => list.includes("*") || list.includes(v);
  return hook.rules.some((rule) => {
    if (!has(rule.operations, attrs.operation)) return false;
    if (!has(rule.apiGroups, attrs.ref.group) || !has(rule.apiVersions, attrs.ref.version)) return false;
    const resourceOk = rule.resources.some((r) => {
      const slash = r.indexOf("/");
      const res = slash < 0 ? r : r.slice(0, slash);
      const sub = slash < 0 ? "" : r.slice(slash + 1);
      return (res === "*" || res === attrs.ref.resource) && (sub === "*" || sub === attrs.subresource);
    });
    if (!resourceOk) return false;
    // A Namespace object is cluster-scoped even though its requests carry its name as namespace.
    const clusterScoped = isNamespaceRequest(attrs) || attrs.namespace === "";
    if (rule.scope === "Cluster") return clusterScoped;
    if (rule.scope === "Namespaced") return !clusterScoped;
    return true;
  });
}

/**
 * Full match: rules, then objectSelector (the new or the old object's labels), then
 * namespaceSelector against `namespaceLabels` (undefined for cluster-scoped objects, which
 * the namespaceSelector never excludes).
 */
export function webhookMatchesRequest(
  hook: Webhook,
  attrs: AdmissionAttributes,
  namespaceLabels: Record<string, string> | undefined,
): boolean {
  if (!rulesMatch(hook, attrs)) return false;
  if (!objectSelectorMatches(hook, attrs)) return false;
  return namespaceLabels === undefined || matchLabelSelector(hook.namespaceSelector, namespaceLabels);
}

function selectorIsEmpty(s: LabelSelector | undefined): boolean {
  return !s || (Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0);
}

function objectSelectorMatches(hook: Webhook, attrs: AdmissionAttributes): boolean {
  if (selectorIsEmpty(hook.objectSelector)) return true;
  return [attrs.object, attrs.oldObject].some(
    (o) => o !== undefined && matchLabelSelector(hook.objectSelector, o.metadata.labels ?? {}),
  );
}

/** Where a Service-backed webhook is dialled. */
export interface DialTarget {
  host: string;
  port: number;
}

export interface WebhookAdmissionOptions {
  /**
   * Maps a webhook's Service to an address the API server process can dial. Default: the
   * Service's ClusterIP and the named port (the node makes ClusterIPs reachable from the host).
   */
  resolveService?: (namespace: string, name: string, port: number) => DialTarget | Promise<DialTarget>;
  log?: Logger;
}

/** A webhook call that did not produce a usable answer; subject to the webhook's failurePolicy. */
class CallFailure extends Error {}

/**
 * Admission by the cluster's webhook configurations: read on every request, or from a watched
 * mirror once `start()` has been called and the mirror has synced.
 */
export class WebhookAdmission implements Admission {
  readonly #resolveService: WebhookAdmissionOptions["resolveService"];
  readonly #log: Logger;
  #mirrors: Map<string, WatchedCollection> | undefined;

  constructor(opts: WebhookAdmissionOptions = {}) {
    this.#resolveService = opts.resolveService;
    this.#log = opts.log ?? silentLogger;
  }

  /** Mirrors the two configuration collections through `client` until `signal` aborts. Optional. */
  start(client: ApiClient, signal: AbortSignal): void {
    if (this.#mirrors) return;
    this.#mirrors = new Map();
    for (const ref of [Resources.mutatingwebhookconfigurations, Resources.validatingwebhookconfigurations]) {
      const m = new WatchedCollection({ client, ref, log: this.#log });
      this.#mirrors.set(ref.resource, m);
      m.start(signal);
    }
  }

  /** True when no mirror was started, or every mirror has synced. */
  hasSynced(): boolean {
    return [...(this.#mirrors?.values() ?? [])].every((m) => m.hasSynced());
  }

  /** Resolves after the next change to a mirrored configuration collection (tests; no-op without start()). */
  async nextChange(): Promise<void> {
    if (this.#mirrors) await Promise.race([...this.#mirrors.values()].map((m) => m.nextChange()));
  }

  async whenSynced(): Promise<void> {
    await Promise.all([...(this.#mirrors?.values() ?? [])].map((m) => m.whenSynced()));
  }

  /**
   * Calls every matching mutating webhook in order (configuration name, then position), each
   * seeing the previous one's result, and returns the object to store.
   */
  async mutate(attrs: AdmissionAttributes, client: ApiClient): Promise<KubeObject | undefined> {
    const hooks = await this.#matching(Resources.mutatingwebhookconfigurations, attrs, client);
    let current = attrs;
    for (const hook of hooks) {
      const response = await this.#callOrIgnore(hook, current, client);
      if (!response) continue;
      const patch = str(response.patch);
      if (!patch || current.object === undefined) continue;
      if (response.patchType !== "JSONPatch") {
        throw internalError(
          `admission webhook ${JSON.stringify(hook.name)} returned patchType ${JSON.stringify(response.patchType)}: only JSONPatch is supported`,
        );
      }
      let operations: unknown;
      try {
        operations = JSON.parse(Buffer.from(patch, "base64").toString("utf8"));
      } catch (err) {
        throw internalError(
          `admission webhook ${JSON.stringify(hook.name)} returned a patch that is not JSON: ${errorMessage(err)}`,
        );
      }
      const patched = applyJsonPatch(current.object, operations);
      if (!patched.ok) {
        throw internalError(
          `admission webhook ${JSON.stringify(hook.name)} returned a patch that does not apply: ${patched.reasons.join("; ")}`,
        );
      }
      current = { ...current, object: patched.value as KubeObject };
    }
    return current.object;
  }

  /** Calls every matching validating webhook at once; the first denial in configuration order wins. */
  async validate(attrs: AdmissionAttributes, client: ApiClient): Promise<void> {
    const hooks = await this.#matching(Resources.validatingwebhookconfigurations, attrs, client);
    const outcomes = await Promise.allSettled(hooks.map((h) => this.#callOrIgnore(h, attrs, client)));
    for (const o of outcomes) if (o.status === "rejected") throw o.reason;
  }

  async #matching(
    ref: typeof Resources.mutatingwebhookconfigurations | typeof Resources.validatingwebhookconfigurations,
    attrs: AdmissionAttributes,
    client: ApiClient,
  ): Promise<Webhook[]> {
    // Webhook configurations are never sent to webhooks: a broken webhook could otherwise never be removed.
    if (
      attrs.ref.group === "admissionregistration.k8s.io" &&
      (attrs.ref.resource === Resources.mutatingwebhookconfigurations.resource ||
        attrs.ref.resource === Resources.validatingwebhookconfigurations.resource)
    ) {
      return [];
    }
    const mirror = this.#mirrors?.get(ref.resource);
    const configs = mirror?.hasSynced()
      ? mirror.items()
      : (await client.list(ref)).items.sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
    const candidates = configs
      .flatMap(webhooksOf)
      .filter((h) => rulesMatch(h, attrs) && objectSelectorMatches(h, attrs));
    if (candidates.length === 0) return [];
    const labels = await this.#namespaceLabels(attrs, candidates, client);
    return candidates.filter((h) => webhookMatchesRequest(h, attrs, labels));
  }

  /** The labels namespaceSelectors are matched against; undefined for cluster-scoped objects other than Namespaces. */
  async #namespaceLabels(
    attrs: AdmissionAttributes,
    candidates: Webhook[],
    client: ApiClient,
  ): Promise<Record<string, string> | undefined> {
    const isNamespace = isNamespaceRequest(attrs);
    if (!isNamespace && attrs.namespace === "") return undefined;
    if (candidates.every((h) => selectorIsEmpty(h.namespaceSelector))) return {};
    // A Namespace being created or updated is matched on its new labels: the store has not got them yet.
    if (isNamespace && attrs.subresource === "" && (attrs.operation === "CREATE" || attrs.operation === "UPDATE")) {
      return attrs.object?.metadata.labels ?? {};
    }
    const name = attrs.namespace || attrs.name;
    try {
      return (await client.get(Resources.namespaces, undefined, name)).metadata.labels ?? {};
    } catch (err) {
      if (isApiError(err, 404)) throw err;
      throw internalError(
        `reading namespace ${JSON.stringify(name)} for webhook namespaceSelector: ${errorMessage(err)}`,
      );
    }
  }

  /** Calls one webhook and applies its failurePolicy; a denial rejects, an ignored failure gives undefined. */
  async #callOrIgnore(
    hook: Webhook,
    attrs: AdmissionAttributes,
    client: ApiClient,
  ): Promise<Record<string, unknown> | undefined> {
    if (attrs.dryRun && hook.sideEffects !== "None" && hook.sideEffects !== "NoneOnDryRun") {
      throw badRequest(`admission webhook ${JSON.stringify(hook.name)} does not support dry run`);
    }
    let response: Record<string, unknown>;
    try {
      response = await this.#call(hook, attrs, client);
    } catch (err) {
      if (!(err instanceof CallFailure)) throw err;
      const message = `failed calling webhook ${JSON.stringify(hook.name)}: ${err.message}`;
      if (hook.failurePolicy === "Ignore") {
        this.#log.warn("webhook call failed; failurePolicy Ignore, continuing", {
          webhook: hook.name,
          configuration: hook.configurationName,
          error: err.message,
        });
        return undefined;
      }
      throw internalError(message);
    }
    if (response.allowed === true) return response;
    throw denial(hook.name, rec(response.status));
  }

  async #call(hook: Webhook, attrs: AdmissionAttributes, client: ApiClient): Promise<Record<string, unknown>> {
    if (!hook.admissionReviewVersions.includes("v1")) {
      throw new CallFailure(
        `webhook does not accept known AdmissionReview versions ${JSON.stringify(hook.admissionReviewVersions)}: this API server speaks v1 only`,
      );
    }
    const target = await this.#target(hook, client);
    const uid = randomUUID();
    const review = admissionReview(uid, attrs);
    const url = `${target.url}${target.url.includes("?") ? "&" : "?"}timeout=${hook.timeoutSeconds}s`;
    const body = await post({
      url,
      dial: target.dial,
      serverName: target.serverName,
      ca: hook.clientConfig.caBundle,
      body: JSON.stringify(review),
      timeoutMs: hook.timeoutSeconds * 1000,
    });
    let parsed: Record<string, unknown>;
    try {
      parsed = rec(JSON.parse(body));
    } catch {
      throw new CallFailure(`received invalid webhook response: not JSON`);
    }
    if (parsed.apiVersion !== "admission.k8s.io/v1" || parsed.kind !== "AdmissionReview") {
      throw new CallFailure(
        `received invalid webhook response: expected admission.k8s.io/v1, Kind=AdmissionReview, got ${str(parsed.apiVersion)}, Kind=${str(parsed.kind)}`,
      );
    }
    const response = rec(parsed.response);
    if (response.uid !== uid) {
      throw new CallFailure(
        `received invalid webhook response: expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(response.uid ?? "")}`,
      );
    }
    return response;
  }

  async #target(hook: Webhook, client: ApiClient): Promise<{ url: string; dial: DialTarget; serverName: string }> {
    const cc = hook.clientConfig;
    if (cc.url) {
      let u: URL;
      try {
        u = new URL(cc.url);
      } catch {
        throw new CallFailure(`clientConfig.url ${JSON.stringify(cc.url)} is not a URL`);
      }
      if (u.protocol !== "https:") throw new CallFailure(`clientConfig.url ${JSON.stringify(cc.url)} must use https`);
      const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
      return { url: cc.url, dial: { host, port: Number(u.port || 443) }, serverName: host };
    }
    if (!cc.service) throw new CallFailure("clientConfig has neither url nor service");
    const { namespace, name, port, path } = cc.service;
    // The certificate must be for the Service's DNS name, wherever the connection actually goes.
    const serverName = `${name}.${namespace}.svc`;
    const url = `https://${serverName}:${port}${path.startsWith("/") ? path : `/${path}`}`;
    let dial: DialTarget;
    try {
      dial = this.#resolveService
        ? await this.#resolveService(namespace, name, port)
        : await resolveClusterIp(client, namespace, name, port);
    } catch (err) {
      throw new CallFailure(`failed to call webhook: Post ${JSON.stringify(url)}: ${errorMessage(err)}`);
    }
    return { url, dial, serverName };
  }
}

/** The spec of the webhook's Service; a missing one is worded as kube-apiserver words it. */
async function serviceSpec(client: ApiClient, namespace: string, name: string): Promise<Record<string, unknown>> {
  try {
    return rec((await client.get(Resources.services, namespace, name)).spec);
  } catch (err) {
    if (isApiError(err, 404)) throw new Error(`service "${namespace}/${name}" not found`);
    throw err;
  }
}

/** The Service port numbered `port` in `spec`; its absence is worded as kube-apiserver words it. */
function findServicePort(spec: Record<string, unknown>, port: number, name: string): Record<string, unknown> {
  const found = (Array.isArray(spec.ports) ? spec.ports.map(rec) : []).find((p) => p.port === port);
  if (!found) throw new Error(`no service port ${port} found for service "${name}"`);
  return found;
}

/** The default Service resolution: the ClusterIP and the Service port, as kube-apiserver's ClusterIP routing does. */
async function resolveClusterIp(client: ApiClient, namespace: string, name: string, port: number): Promise<DialTarget> {
  const spec = await serviceSpec(client, namespace, name);
  if (spec.type === "ExternalName") return { host: str(spec.externalName), port };
  const ip = str(spec.clusterIP);
  if (!ip || ip === "None") throw new Error(`service "${namespace}/${name}" has no ClusterIP`);
  findServicePort(spec, port, name);
  return { host: ip, port };
}

/**
 * A resolveService that dials a ready endpoint of the Service directly (pod IP and the
 * EndpointSlice's port for the Service port), as kube-apiserver's endpoint routing does. For
 * when ClusterIPs are not reachable from the API server's process.
 */
export function endpointServiceResolver(
  client: ApiClient,
): (namespace: string, name: string, port: number) => Promise<DialTarget> {
  return async (namespace, name, port) => {
    const portName = str(findServicePort(await serviceSpec(client, namespace, name), port, name).name);
    const slices = await client.list(Resources.endpointslices, {
      namespace,
      labelSelector: `kubernetes.io/service-name=${name}`,
    });
    const targets: DialTarget[] = [];
    for (const slice of slices.items) {
      const slicePorts = Array.isArray(slice.ports) ? slice.ports.map(rec) : [];
      const sp = slicePorts.find((p) => str(p.name) === portName);
      if (!sp || typeof sp.port !== "number") continue;
      for (const ep of Array.isArray(slice.endpoints) ? slice.endpoints.map(rec) : []) {
        if (rec(ep.conditions).ready === false) continue;
        const address = strings(ep.addresses)[0];
        if (address) targets.push({ host: address, port: sp.port });
      }
    }
    if (targets.length === 0) throw new Error(`service "${namespace}/${name}" has no ready endpoints for port ${port}`);
    return targets[Math.floor(Math.random() * targets.length)] as DialTarget;
  };
}

function denial(webhookName: string, status: Record<string, unknown>): ApiError {
  const prefix = `admission webhook ${JSON.stringify(webhookName)} denied the request`;
  const message = str(status.message);
  const reason = str(status.reason);
  const code = typeof status.code === "number" && status.code >= 400 ? status.code : 400;
  const details = status.details === undefined ? undefined : (rec(status.details) as ApiError["status"]["details"]);
  const text = message ? `${prefix}: ${message}` : reason ? `${prefix}: ${reason}` : `${prefix} without explanation`;
  return new ApiError(failureStatus(code, reason, text, details));
}

const optionsKind: Record<AdmissionAttributes["operation"], string> = {
  CREATE: "CreateOptions",
  UPDATE: "UpdateOptions",
  DELETE: "DeleteOptions",
  CONNECT: "",
};

/** The AdmissionReview v1 request kube-apiserver sends for `attrs`. */
export function admissionReview(uid: string, attrs: AdmissionAttributes): KubeObject {
  const kind = { group: attrs.kind.group, version: attrs.kind.version, kind: attrs.kind.kind };
  const resource = { group: attrs.ref.group, version: attrs.ref.version, resource: attrs.ref.resource };
  const opts = optionsKind[attrs.operation];
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    metadata: {},
    request: {
      uid,
      kind,
      resource,
      ...(attrs.subresource ? { subResource: attrs.subresource } : {}),
      requestKind: kind,
      requestResource: resource,
      ...(attrs.subresource ? { requestSubResource: attrs.subresource } : {}),
      ...(attrs.name ? { name: attrs.name } : {}),
      ...(attrs.namespace ? { namespace: attrs.namespace } : {}),
      operation: attrs.operation,
      userInfo: {
        username: attrs.user.username,
        ...(attrs.user.uid ? { uid: attrs.user.uid } : {}),
        groups: attrs.user.groups,
        ...(attrs.user.extra ? { extra: attrs.user.extra } : {}),
      },
      object: attrs.object ?? null,
      oldObject: attrs.oldObject ?? null,
      dryRun: attrs.dryRun,
      options: opts ? { kind: opts, apiVersion: "meta.k8s.io/v1", ...(attrs.dryRun ? { dryRun: ["All"] } : {}) } : null,
    },
  };
}

/** Most a webhook may answer; kube-apiserver uses the same order of magnitude. */
const maxResponseBytes = 10 * 1024 * 1024;

function post(p: {
  url: string;
  dial: DialTarget;
  serverName: string;
  ca: string;
  body: string;
  timeoutMs: number;
}): Promise<string> {
  const u = new URL(p.url);
  const fail = (why: string) => new CallFailure(`failed to call webhook: Post ${JSON.stringify(p.url)}: ${why}`);
  return new Promise((resolve, reject) => {
    let req: ReturnType<typeof httpsRequest>;
    try {
      req = httpsRequest({
        host: p.dial.host,
        port: p.dial.port,
        method: "POST",
        path: `${u.pathname}${u.search}`,
        // SNI must be a DNS name; for an IP the certificate is still checked against it below.
        ...(isIP(p.serverName) ? {} : { servername: p.serverName }),
        ...(p.ca ? { ca: p.ca } : {}),
        rejectUnauthorized: true,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(p.serverName, cert),
        agent: false,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          host: u.host,
          "content-length": Buffer.byteLength(p.body),
        },
      });
    } catch (err) {
      // A caBundle that is not PEM fails here, before any connection: a call failure like any other.
      reject(fail(`invalid clientConfig.caBundle or TLS options: ${errorMessage(err)}`));
      return;
    }
    const timer = setTimeout(() => req.destroy(fail("context deadline exceeded")), p.timeoutMs);
    const done = (fn: () => void) => {
      clearTimeout(timer);
      fn();
    };
    req.on("error", (err) => done(() => reject(err instanceof CallFailure ? err : fail(errorMessage(err)))));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > maxResponseBytes) req.destroy(fail(`response larger than ${maxResponseBytes} bytes`));
        else chunks.push(c);
      });
      res.on("error", (err) => done(() => reject(err instanceof CallFailure ? err : fail(errorMessage(err)))));
      res.on("end", () =>
        done(() => {
          const text = Buffer.concat(chunks).toString("utf8");
          const code = res.statusCode ?? 0;
          if (code < 200 || code > 299) {
            reject(fail(`the server responded ${code}: ${text.slice(0, 200)}`));
          } else resolve(text);
        }),
      );
    });
    req.end(p.body);
  });
}
