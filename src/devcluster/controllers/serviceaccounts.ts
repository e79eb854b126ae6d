/**
 * Per-namespace service-account plumbing: a `default` ServiceAccount and a `kube-root-ca.crt`
 * ConfigMap (key `ca.crt`: the cluster CA) in every live namespace, put back if deleted or
 * changed; and the legacy token controller, which fills Secrets of type
 * `kubernetes.io/service-account-token` with `token`, `ca.crt` and `namespace`, and deletes
 * them when the ServiceAccount they were filled for is gone.
 */
import type { Logger } from "../../base/index.js";
import { type ApiClient, isApiError, type KubeObject, Resources } from "../api/types.js";
import { splitKey } from "./informer.js";
import type { Informer } from "./informer.js";
import { type ConfigMap, clone, type Namespace, type Secret } from "./objects.js";
import { WorkQueue } from "./queue.js";
import { type ControllerContext, deleteExactly, nsKey } from "./shared.js";

export const rootCaConfigMapName = "kube-root-ca.crt";
export const defaultServiceAccountName = "default";
export const serviceAccountTokenType = "kubernetes.io/service-account-token";
export const serviceAccountNameAnnotation = "kubernetes.io/service-account.name";
export const serviceAccountUidAnnotation = "kubernetes.io/service-account.uid";

/**
 * Signs legacy (non-expiring) service-account tokens for token Secrets. The auth part's
 * ServiceAccountTokens (src/devcluster/auth/tokens.ts) satisfies it.
 */
export interface LegacyTokenIssuer {
  issueLegacy(req: {
    namespace: string;
    serviceAccount: { name: string; uid: string };
    secretName: string;
  }): string | Promise<string>;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

function isLive(ns: Namespace | undefined): ns is Namespace {
  return ns !== undefined && !ns.metadata.deletionTimestamp && ns.status?.phase !== "Terminating";
}

/** The default ServiceAccount, root CA ConfigMap and token Secret controllers. */
export class ServiceAccountsController {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #rootCaPem: string;
  readonly #tokens: LegacyTokenIssuer;
  readonly #namespaces: Informer<Namespace>;
  readonly #serviceAccounts: Informer<KubeObject>;
  readonly #configMaps: Informer<ConfigMap>;
  readonly #secrets: Informer<Secret>;
  /** Keyed by namespace name: ensure default SA and root CA ConfigMap. */
  readonly #nsQueue: WorkQueue;
  /** Keyed by Secret ns/name: fill or clean up a token Secret. */
  readonly #tokenQueue: WorkQueue;

  constructor(ctx: ControllerContext, opts: { rootCaPem: string; tokens: LegacyTokenIssuer }) {
    this.#client = ctx.client;
    this.#log = ctx.log.child("serviceaccount");
    this.#rootCaPem = opts.rootCaPem;
    this.#tokens = opts.tokens;
    this.#namespaces = ctx.informers.informer<Namespace>(Resources.namespaces);
    this.#serviceAccounts = ctx.informers.informer<KubeObject>(Resources.serviceaccounts);
    this.#configMaps = ctx.informers.informer<ConfigMap>(Resources.configmaps);
    this.#secrets = ctx.informers.informer<Secret>(Resources.secrets);
    this.#nsQueue = new WorkQueue({ name: "serviceaccount", process: (k) => this.#syncNamespace(k), log: this.#log });
    this.#tokenQueue = new WorkQueue({ name: "tokens", process: (k) => this.#syncSecret(k), log: this.#log });

    const enqueueNs = (ns: Namespace) => this.#nsQueue.add(ns.metadata.name ?? "");
    this.#namespaces.addHandler({ add: enqueueNs, update: (_o, n) => enqueueNs(n) });
    this.#serviceAccounts.addHandler({
      add: (sa) => this.#enqueueTokensOf(sa),
      delete: (sa) => {
        if (sa.metadata.name === defaultServiceAccountName) this.#nsQueue.add(sa.metadata.namespace ?? "");
        this.#enqueueTokensOf(sa);
      },
    });
    const cmChanged = (cm: ConfigMap) => {
      if (cm.metadata.name === rootCaConfigMapName) this.#nsQueue.add(cm.metadata.namespace ?? "");
    };
    this.#configMaps.addHandler({ update: (_o, n) => cmChanged(n), delete: cmChanged });
    const enqueueSecret = (s: Secret) => {
      if (s.type === serviceAccountTokenType) this.#tokenQueue.add(nsKey(s.metadata.namespace, s.metadata.name ?? ""));
    };
    this.#secrets.addHandler({ add: enqueueSecret, update: (_o, n) => enqueueSecret(n) });
  }

  #enqueueTokensOf(sa: KubeObject): void {
    for (const s of this.#secrets.list(sa.metadata.namespace)) {
      if (
        s.type === serviceAccountTokenType &&
        s.metadata.annotations?.[serviceAccountNameAnnotation] === sa.metadata.name
      ) {
        this.#tokenQueue.add(nsKey(s.metadata.namespace, s.metadata.name ?? ""));
      }
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#nsQueue.run(signal), this.#tokenQueue.run(signal)]);
  }

  async #syncNamespace(name: string): Promise<void> {
    if (!isLive(this.#namespaces.get(undefined, name))) return;
    if (!this.#serviceAccounts.get(name, defaultServiceAccountName)) {
      await this.#createIgnoringExists(Resources.serviceaccounts, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: defaultServiceAccountName, namespace: name },
      });
    }
    const cm = this.#configMaps.get(name, rootCaConfigMapName);
    if (!cm) {
      await this.#createIgnoringExists(Resources.configmaps, {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: rootCaConfigMapName,
          namespace: name,
          annotations: {
            "kubernetes.io/description":
              "The cluster's CA bundle, for checking the API server's certificate from inside the cluster.",
          },
        },
        data: { "ca.crt": this.#rootCaPem },
      });
    } else if (cm.data?.["ca.crt"] !== this.#rootCaPem || Object.keys(cm.data ?? {}).length !== 1) {
      const next = clone(cm);
      next.data = { "ca.crt": this.#rootCaPem };
      await this.#client.update(Resources.configmaps, next);
    }
  }

  async #createIgnoringExists(ref: typeof Resources.configmaps | typeof Resources.serviceaccounts, obj: KubeObject) {
    try {
      await this.#client.create(ref, obj);
    } catch (err) {
      // 409: the informer lags behind; 403/404: the namespace went away meanwhile.
      if (isApiError(err, 409) || isApiError(err, 403) || isApiError(err, 404)) return;
      throw err;
    }
  }

  async #serviceAccount(namespace: string, name: string): Promise<KubeObject | undefined> {
    const cached = this.#serviceAccounts.get(namespace, name);
    if (cached) return cached;
    try {
      return await this.#client.get(Resources.serviceaccounts, namespace, name);
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  async #syncSecret(key: string): Promise<void> {
    const secret = this.#secrets.getByKey(key);
    if (!secret || secret.type !== serviceAccountTokenType || secret.metadata.deletionTimestamp) return;
    const { namespace } = splitKey(key);
    const saName = secret.metadata.annotations?.[serviceAccountNameAnnotation];
    if (!saName) return;
    const wantedUid = secret.metadata.annotations?.[serviceAccountUidAnnotation];
    const sa = await this.#serviceAccount(namespace, saName);
    if (!sa || (wantedUid && sa.metadata.uid !== wantedUid)) {
      // A Secret filled for a ServiceAccount that is gone (its uid recorded) goes with it, as in
      // Kubernetes; one that names a ServiceAccount not created yet waits for it (its ADDED event).
      if (wantedUid) await this.#deleteSecret(secret);
      return;
    }
    const saUid = sa.metadata.uid ?? "";
    const data = secret.data ?? {};
    const caOk = data["ca.crt"] === b64(this.#rootCaPem);
    const nsOk = data.namespace === b64(namespace);
    if (data.token && caOk && nsOk && wantedUid === saUid) return;
    const next = clone(secret);
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), [serviceAccountUidAnnotation]: saUid };
    const token =
      data.token ??
      b64(
        await this.#tokens.issueLegacy({
          namespace,
          serviceAccount: { name: saName, uid: saUid },
          secretName: secret.metadata.name ?? "",
        }),
      );
    next.data = { ...data, token, "ca.crt": b64(this.#rootCaPem), namespace: b64(namespace) };
    try {
      await this.#client.update(Resources.secrets, next);
      this.#log.debug("filled service-account token secret", { secret: key, serviceAccount: saName });
    } catch (err) {
      if (isApiError(err, 404)) return;
      throw err;
    }
  }

  #deleteSecret(secret: Secret): Promise<void> {
    return deleteExactly(this.#client, { ref: Resources.secrets, obj: secret });
  }
}
