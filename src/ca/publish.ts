/**
 * Distributing the CA's trust: the root as ConfigMap `istio-ca-root-cert` in every namespace
 * (what the injected `istiod-ca-cert` volume mounts), and the caBundle of the injection
 * webhook (so the API server trusts istiod's webhook certificate). Both are loops the control
 * plane runs; each converges again after an outage or a hand edit.
 */
import { Backoff, type Logger, silentLogger, sleep } from "../base/index.js";
import { type CaKubeClient, httpStatusOf, type KubeObjectLike, Refs } from "./kube-api.js";

export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
export const ROOT_CERT_KEY = "root-cert.pem";

export interface RootCertPublisherOptions {
  readonly client: CaKubeClient;
  readonly rootPem: string;
  readonly signal: AbortSignal;
  readonly log?: Logger;
  /** Called once, after every namespace that existed at start has the ConfigMap. */
  readonly onSynced?: () => void;
}

/** Makes `istio-ca-root-cert` hold `rootPem` in one namespace. Returns what it did. */
export async function ensureRootCertConfigMap(
  client: CaKubeClient,
  namespace: string,
  rootPem: string,
): Promise<"created" | "updated" | "unchanged" | "namespace-gone"> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let current: KubeObjectLike | undefined;
    try {
      current = await client.get(Refs.configmaps, namespace, ROOT_CERT_CONFIGMAP);
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
    }
    try {
      if (current === undefined) {
        await client.create(Refs.configmaps, {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: ROOT_CERT_CONFIGMAP, namespace, labels: { "istio.io/config": "true" } },
          data: { [ROOT_CERT_KEY]: rootPem },
        });
        return "created";
      }
      const data = (current.data ?? {}) as Record<string, string>;
      if (data[ROOT_CERT_KEY] === rootPem) return "unchanged";
      await client.update(Refs.configmaps, { ...current, data: { ...data, [ROOT_CERT_KEY]: rootPem } });
      return "updated";
    } catch (err) {
      const code = httpStatusOf(err);
      // 404 on create: the namespace is gone; 403: it is terminating. Neither needs the root any more.
      if (code === 404 || code === 403) return "namespace-gone";
      if (code !== 409) throw err;
    }
  }
  throw new Error(`ConfigMap ${namespace}/${ROOT_CERT_CONFIGMAP} kept changing under us (3 conflicts in a row)`);
}

function isTerminating(ns: KubeObjectLike): boolean {
  return (ns.status as { phase?: string } | undefined)?.phase === "Terminating";
}

/**
 * Publishes the root into every namespace until `signal` aborts: lists and watches namespaces
 * (new ones get it at once) and the ConfigMaps themselves (an edited or deleted one is put back).
 */
export async function runRootCertPublisher(opts: RootCertPublisherOptions): Promise<void> {
  const log = opts.log ?? silentLogger;
  const { client, rootPem, signal } = opts;
  let synced = false;

  const publish = async (namespace: string) => {
    try {
      const what = await ensureRootCertConfigMap(client, namespace, rootPem);
      if (what === "created" || what === "updated") log.debug(`${what} ${ROOT_CERT_CONFIGMAP}`, { namespace });
    } catch (err) {
      log.warn(`could not publish ${ROOT_CERT_CONFIGMAP}`, { namespace, err });
    }
  };

  const namespaces = async () => {
    const list = await client.list(Refs.namespaces);
    for (const ns of list.items) {
      if (ns.metadata.name && !isTerminating(ns)) await publish(ns.metadata.name);
    }
    if (!synced) {
      synced = true;
      opts.onSynced?.();
    }
    for await (const ev of client.watch(Refs.namespaces, { resourceVersion: list.resourceVersion }, signal)) {
      if (ev.type === "ERROR") return;
      if ((ev.type === "ADDED" || ev.type === "MODIFIED") && ev.object.metadata.name && !isTerminating(ev.object)) {
        await publish(ev.object.metadata.name);
      }
    }
  };

  const configMaps = async () => {
    const fieldSelector = `metadata.name=${ROOT_CERT_CONFIGMAP}`;
    const list = await client.list(Refs.configmaps, { fieldSelector });
    for await (const ev of client.watch(
      Refs.configmaps,
      { fieldSelector, resourceVersion: list.resourceVersion },
      signal,
    )) {
      if (ev.type === "ERROR") return;
      const ns = ev.object.metadata.namespace;
      if (ns === undefined || ev.object.metadata.name !== ROOT_CERT_CONFIGMAP) continue;
      const data = (ev.object.data ?? {}) as Record<string, string>;
      if (ev.type === "DELETED" || data[ROOT_CERT_KEY] !== rootPem) await publish(ns);
    }
  };

  await Promise.all([loop("namespaces", namespaces), loop("configmaps", configMaps)]);

  async function loop(what: string, body: () => Promise<void>): Promise<void> {
    const backoff = new Backoff(500, 10_000);
    while (!signal.aborted) {
      try {
        await body();
        backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        log.warn(`root certificate publisher: ${what} watch failed; retrying`, { err });
        try {
          await sleep(backoff.next(), signal);
        } catch {
          return;
        }
      }
    }
  }
}

export const INJECTOR_WEBHOOK_NAME = "istio-sidecar-injector";

/**
 * Sets `clientConfig.caBundle` of every webhook of a MutatingWebhookConfiguration to `caPem`.
 * Returns "not-found" when the configuration does not exist yet (install has not run).
 */
export async function patchWebhookCaBundle(opts: {
  client: CaKubeClient;
  caPem: string;
  name?: string;
}): Promise<"updated" | "unchanged" | "not-found"> {
  const name = opts.name ?? INJECTOR_WEBHOOK_NAME;
  const caBundle = Buffer.from(opts.caPem).toString("base64");
  for (let attempt = 0; attempt < 3; attempt++) {
    let current: KubeObjectLike;
    try {
      current = await opts.client.get(Refs.mutatingwebhookconfigurations, undefined, name);
    } catch (err) {
      if (httpStatusOf(err) === 404) return "not-found";
      throw err;
    }
    const webhooks = (current.webhooks ?? []) as { clientConfig?: Record<string, unknown> }[];
    if (webhooks.every((w) => w.clientConfig?.caBundle === caBundle)) return "unchanged";
    const next = webhooks.map((w) => ({ ...w, clientConfig: { ...(w.clientConfig ?? {}), caBundle } }));
    try {
      await opts.client.update(Refs.mutatingwebhookconfigurations, { ...current, webhooks: next });
      return "updated";
    } catch (err) {
      if (httpStatusOf(err) !== 409) throw err;
    }
  }
  throw new Error(`MutatingWebhookConfiguration ${name} kept changing under us (3 conflicts in a row)`);
}

/**
 * Keeps the injector webhook's caBundle equal to `caPem` until `signal` aborts: a re-install
 * or hand edit that drops it is patched again at once.
 */
export async function runWebhookCaBundlePatcher(opts: {
  client: CaKubeClient;
  caPem: string;
  signal: AbortSignal;
  name?: string;
  log?: Logger;
}): Promise<void> {
  const log = opts.log ?? silentLogger;
  const name = opts.name ?? INJECTOR_WEBHOOK_NAME;
  const backoff = new Backoff(500, 10_000);
  while (!opts.signal.aborted) {
    try {
      const fieldSelector = `metadata.name=${name}`;
      const list = await opts.client.list(Refs.mutatingwebhookconfigurations, { fieldSelector });
      const result = await patchWebhookCaBundle(opts);
      if (result === "updated") log.info("patched the injection webhook's caBundle", { name });
      for await (const ev of opts.client.watch(
        Refs.mutatingwebhookconfigurations,
        { fieldSelector, resourceVersion: list.resourceVersion },
        opts.signal,
      )) {
        if (ev.type === "ERROR") break;
        if ((ev.type === "ADDED" || ev.type === "MODIFIED") && ev.object.metadata.name === name) {
          if ((await patchWebhookCaBundle(opts)) === "updated")
            log.info("patched the injection webhook's caBundle", { name });
        }
      }
      backoff.reset();
    } catch (err) {
      if (opts.signal.aborted) return;
      log.warn("webhook caBundle patcher failed; retrying", { name, err });
      try {
        await sleep(backoff.next(), opts.signal);
      } catch {
        return;
      }
    }
  }
}
