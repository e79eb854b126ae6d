/**
 * istiod's composition root: the own cluster's registry, the multicluster secret controller,
 * the aggregate view, the xDS server, the CA, and the monitoring port. Ingest → translate →
 * serve: registry changes become push requests; xDS ports open only once the own cluster has
 * synced; `/ready` says so once every remote cluster has synced or timed out.
 */
import { setMaxListeners } from "node:events";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { KubeConfig } from "@kubernetes/client-node";
import { Backoff, type Logger, errorMessage, sleep } from "../base/index.js";
import {
  type CertificateAuthority,
  createCertificateServiceHandlers,
  istioCertificateServiceDefinition,
  loadOrCreateCa,
  RestKubeApi,
  runRootCertPublisher,
  runWebhookCaBundlePatcher,
} from "../ca/index.js";
import { createInjectionHandler } from "../inject/index.js";
import { type ConfigMap, Informer, KubeClient, type ListWatcher, ResourceTypes, type Secret } from "../kube/index.js";
import {
  Aggregate,
  type ClusterDebugInfo,
  ClusterRegistry,
  type Clock,
  type KubeRemoteCluster,
  MultiClusterSecretLabel,
  SecretController,
  kubeRemoteClusterFactory,
} from "../registry/index.js";
import {
  type DiscoveryEnv,
  type MeshConfig,
  defaultMeshConfig,
  parseAddr,
  parseInjectValues,
  parseMeshConfig,
} from "./config.js";
import { renderMetrics } from "./metrics.js";
import type { XdsBackend, XdsBackendFactory } from "./xds-backend.js";

export interface ControlPlaneOptions {
  readonly env: DiscoveryEnv;
  /** The own cluster's KubeConfig (in-cluster or --kubeconfig/--context). */
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** `--monitoringAddr`, default ":15014": /ready, /debug/*, /metrics. */
  readonly monitoringAddr?: string;
  /** Also serve /ready here (Istio's 8080) when the port is free; undefined or "" skips it. */
  readonly readinessAddr?: string;
  /** `--grpcAddr`, default ":15010": plaintext xDS. "" disables. */
  readonly grpcAddr?: string;
  /** `--secureGrpcAddr`, default ":15012": xDS and the CA over TLS. "" disables. */
  readonly secureGrpcAddr?: string;
  /**
   * `--webhookAddr`, default ":15017": the sidecar injection webhook over TLS (needs the CA), with
   * values from ConfigMap `istio-sidecar-injector` key `values`. "" disables.
   */
  readonly webhookAddr?: string;
  /** The xDS server. Without one, the xDS ports serve only the CA. */
  readonly xds?: XdsBackendFactory;
  /**
   * The CA: "cluster" (default) loads or creates it as istiod does (cacerts / istio-ca-secret),
   * an instance is used as given, false runs without CA (and without the TLS port).
   */
  readonly ca?: "cluster" | CertificateAuthority | false;
  /** Where the `cacerts` Secret is mounted (istiod's /etc/cacerts), checked first. */
  readonly caDir?: string;
  /** Timers for the remote sync timeout; tests inject one. */
  readonly clock?: Clock;
  /** Builds API clients for remote clusters; tests may wrap them. */
  readonly remoteClient?: (kc: KubeConfig) => ListWatcher;
}

/** The addresses the control plane actually listens on (ports chosen when 0 was asked for). */
export interface ListeningPorts {
  monitoring?: number;
  readiness?: number;
  grpc?: number;
  secureGrpc?: number;
  webhook?: number;
}

/** istiod. The constructor does no I/O; start() begins; close() drains. */
export class ControlPlane {
  readonly #opts: ControlPlaneOptions;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #client: KubeClient;
  readonly #aggregate: Aggregate;
  readonly #ports: ListeningPorts = {};
  readonly #httpServers: http.Server[] = [];
  readonly #grpcServers: grpc.Server[] = [];
  readonly #syncTimeouts = new Map<string, number>();
  readonly #readyWaiters = new Set<() => void>();
  readonly #servingWaiters = new Set<() => void>();
  #own: ClusterRegistry | undefined;
  #secrets: SecretController<KubeRemoteCluster> | undefined;
  #xds: XdsBackend | undefined;
  #mesh: MeshConfig | undefined;
  #ca: CertificateAuthority | undefined;
  #ready = false;
  #serving = false;
  #startError: string | undefined;
  /** Why the mesh config could not be read yet (the registries start after it). */
  #meshError: string | undefined;
  #tasks: Promise<unknown>[] = [];

  constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    // Every informer and request of the own cluster listens on this one signal.
    setMaxListeners(0, this.#abort.signal);
    this.#client = new KubeClient(opts.kubeConfig);
    this.#aggregate = new Aggregate({ ownClusterId: opts.env.clusterId, log: opts.log.child("aggregate") });
  }

  /** The merged registry (for tests and debug). */
  get aggregate(): Aggregate {
    return this.#aggregate;
  }

  /** Mesh config in use, once read. */
  get mesh(): MeshConfig | undefined {
    return this.#mesh;
  }

  get ports(): Readonly<ListeningPorts> {
    return this.#ports;
  }

  /** True once the own cluster has synced and every remote cluster has synced, timed out or been closed. Latches. */
  isReady(): boolean {
    if (!this.#ready && this.#own?.hasSynced() && this.#secrets?.hasSynced()) {
      this.#ready = true;
      this.#log.info("ready", { cluster: this.#opts.env.clusterId });
      for (const w of [...this.#readyWaiters]) w();
    }
    return this.#ready;
  }

  /** Resolves once ready (or when the control plane closes). */
  whenReady(): Promise<void> {
    if (this.isReady() || this.#abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#readyWaiters.delete(done);
        resolve();
      };
      this.#readyWaiters.add(done);
    });
  }

  /** Resolves once the xDS ports are open (or when the control plane closes). */
  whenServing(): Promise<void> {
    if (this.#serving || this.#abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#servingWaiters.delete(done);
        resolve();
      };
      this.#servingWaiters.add(done);
    });
  }

  /** `/debug/clusterz`: the own cluster first (no secret), then every remote cluster and every unusable secret key. */
  clusterz(): ClusterDebugInfo[] {
    const ownErr = this.#own?.lastError() ?? this.#meshError;
    return [
      {
        id: this.#opts.env.clusterId,
        secretName: "",
        syncStatus: this.#own?.hasSynced() ? "synced" : "syncing",
        ...(ownErr ? { error: ownErr } : {}),
      },
      ...(this.#secrets?.debugInfo() ?? []),
    ];
  }

  /**
   * Starts serving the monitoring port, then reads the mesh config and starts the registries in
   * the background. Resolves once the monitoring port listens. Throws for unusable addresses.
   */
  async start(): Promise<void> {
    const mon = parseAddr(this.#opts.monitoringAddr ?? ":15014", "--monitoringAddr");
    this.#ports.monitoring = await this.#listenHttp(mon.host, mon.port, (req, res) => this.#handle(req, res));
    if (this.#opts.readinessAddr) {
      const r = parseAddr(this.#opts.readinessAddr, "readiness address");
      try {
        this.#ports.readiness = await this.#listenHttp(r.host, r.port, (req, res) => this.#handleReadiness(req, res));
      } catch (err) {
        this.#log.info("not serving /ready on the readiness port: it is in use", {
          addr: this.#opts.readinessAddr,
          err,
        });
      }
    }
    this.#tasks.push(
      this.#run().catch((err: unknown) => {
        if (this.#abort.signal.aborted) return;
        this.#startError = errorMessage(err);
        this.#log.error("control plane failed", { err: this.#startError });
      }),
    );
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const { env, log } = { env: this.#opts.env, log: this.#log };
    this.#mesh = await this.#readMeshConfig(signal);
    log.info("mesh config", {
      trustDomain: this.#mesh.trustDomain,
      meshId: this.#mesh.meshId,
      cluster: env.clusterId,
      network: env.network,
    });

    // Own cluster.
    const shard = this.#aggregate.createShard(env.clusterId);
    this.#aggregate.activate(shard);
    this.#own = new ClusterRegistry({
      clusterId: env.clusterId,
      client: this.#client,
      shard,
      trustDomain: this.#mesh.trustDomain,
      defaultNetwork: env.network,
      systemNamespace: env.namespace,
      log: log.child(env.clusterId),
    });
    this.#tasks.push(this.#own.run(signal));

    // Remote clusters.
    const secrets = new Informer<Secret>({
      client: this.#client,
      type: ResourceTypes.secrets,
      namespace: env.namespace,
      labelSelector: `${MultiClusterSecretLabel}=true`,
      log: log.child("secrets"),
    });
    this.#secrets = new SecretController<KubeRemoteCluster>({
      ownClusterId: env.clusterId,
      secrets,
      syncTimeoutMs: env.remoteClusterTimeoutMs,
      ...(this.#opts.clock ? { clock: this.#opts.clock } : {}),
      log: log.child("multicluster"),
      onSyncTimeout: (id) => this.#syncTimeouts.set(id, (this.#syncTimeouts.get(id) ?? 0) + 1),
      factory: kubeRemoteClusterFactory({
        aggregate: this.#aggregate,
        trustDomain: this.#mesh.trustDomain,
        systemNamespace: env.namespace,
        allow: env.insecureKubeconfigOptions,
        log: log.child("remote"),
        ...(this.#opts.remoteClient ? { client: this.#opts.remoteClient } : {}),
      }),
    });
    this.#secrets.onChange(() => this.isReady());
    this.#tasks.push(secrets.run(signal));

    // xDS server, fed by registry changes from now on (pushes before any proxy connects are cheap).
    this.#xds = this.#opts.xds?.({
      view: () => this.#aggregate.view(),
      clusterId: env.clusterId,
      network: env.network,
      meshId: this.#mesh.meshId,
      trustDomain: this.#mesh.trustDomain,
      debounceAfterMs: env.debounceAfterMs,
      debounceMaxMs: env.debounceMaxMs,
      ...(env.pushThrottle !== undefined ? { pushThrottle: env.pushThrottle } : {}),
      log: log.child("xds"),
    });
    this.#aggregate.onChange((c) => this.#xds?.onRegistryChange(c));

    // The CA is needed for the TLS port; load it while the registry syncs.
    const caReady = this.#loadCa(signal);

    await this.#own.waitForSync(signal);
    if (signal.aborted) return;
    this.isReady();
    const ca = await caReady;
    await this.#openXds(ca);
    if (ca !== undefined) await this.#openWebhook(ca, signal);
  }

  /** Serves the injection webhook on 15017 and keeps its caBundle patched (as istiod does). */
  async #openWebhook(ca: CertificateAuthority, signal: AbortSignal): Promise<void> {
    const addr = this.#opts.webhookAddr ?? ":15017";
    if (addr === "" || signal.aborted) return;
    const { namespace } = this.#opts.env;
    const cm = (await this.#client
      .get(ResourceTypes.configmaps, namespace, "istio-sidecar-injector", signal)
      .catch((err: unknown) => {
        this.#log.error("cannot read ConfigMap istio-sidecar-injector; not serving the injection webhook", { err });
        return undefined;
      })) as ConfigMap | undefined;
    const values = parseInjectValues(cm?.data?.values);
    if (!values.ok) {
      this.#log.warn("not serving the injection webhook", { namespace, reason: values.reasons.join("; ") });
      return;
    }
    const a = parseAddr(addr, "--webhookAddr");
    const serving = await ca.issueServingCert();
    const handler = createInjectionHandler({
      values: values.value,
      namespaceLabels: async (ns) => this.#own?.namespace(ns)?.metadata.labels,
      log: this.#log.child("inject"),
    });
    const server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, handler);
    this.#ports.webhook = await new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(a.port, a.host, () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
    this.#httpServers.push(server);
    this.#tasks.push(
      runWebhookCaBundlePatcher({
        client: new RestKubeApi(this.#client),
        caPem: ca.rootPem,
        signal,
        log: this.#log.child("webhook-ca"),
      }),
    );
    this.#log.info("serving the injection webhook", { port: this.#ports.webhook });
  }

  async #readMeshConfig(signal: AbortSignal): Promise<MeshConfig> {
    const { namespace } = this.#opts.env;
    const backoff = new Backoff(500, 10_000);
    for (;;) {
      try {
        const cm = (await this.#client.get(ResourceTypes.configmaps, namespace, "istio", signal)) as
          | ConfigMap
          | undefined;
        this.#meshError = undefined;
        const parsed = parseMeshConfig(cm?.data?.mesh);
        if (parsed.ok) return parsed.value;
        // A broken mesh config is the installer's to fix; run with defaults and say so loudly.
        this.#log.error("mesh config in ConfigMap istio is unusable; using defaults", {
          namespace,
          reasons: parsed.reasons.join("; "),
        });
        return defaultMeshConfig;
      } catch (err) {
        if (signal.aborted) throw err;
        const wait = backoff.next();
        this.#meshError = `cannot read ConfigMap ${namespace}/istio: ${errorMessage(err)}`;
        this.#log.warn("cannot read ConfigMap istio yet; retrying", {
          namespace,
          server: this.#client.server,
          retryInMs: wait,
          err,
        });
        await sleep(wait, signal);
      }
    }
  }

  async #loadCa(signal: AbortSignal): Promise<CertificateAuthority | undefined> {
    const opt = this.#opts.ca ?? "cluster";
    if (opt === false) return undefined;
    if (opt !== "cluster") {
      this.#ca = opt;
      return opt;
    }
    const backoff = new Backoff(500, 10_000);
    const client = new RestKubeApi(this.#client);
    for (;;) {
      try {
        const ca = await loadOrCreateCa({
          client,
          namespace: this.#opts.env.namespace,
          ...(this.#opts.caDir ? { dir: this.#opts.caDir } : {}),
          log: this.#log.child("ca"),
        });
        this.#ca = ca;
        this.#tasks.push(
          runRootCertPublisher({ client, rootPem: ca.rootPem, signal, log: this.#log.child("ca-root") }),
        );
        return ca;
      } catch (err) {
        if (signal.aborted) return undefined;
        const wait = backoff.next();
        this.#log.error("cannot load the CA; retrying", { retryInMs: wait, err });
        await sleep(wait, signal).catch(() => {});
      }
    }
  }

  async #openXds(ca: CertificateAuthority | undefined): Promise<void> {
    if (this.#abort.signal.aborted) return;
    const { env } = this.#opts;
    const bind = (server: grpc.Server, addr: string, creds: grpc.ServerCredentials) =>
      new Promise<number>((resolve, reject) =>
        server.bindAsync(addr, creds, (err, port) =>
          err ? reject(new Error(`cannot listen on ${addr}: ${err.message}`)) : resolve(port),
        ),
      );
    const grpcAddr = this.#opts.grpcAddr ?? ":15010";
    if (grpcAddr !== "") {
      const a = parseAddr(grpcAddr, "--grpcAddr");
      const server = new grpc.Server({ "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 });
      this.#xds?.addTo(server);
      this.#ports.grpc = await bind(server, `${a.host}:${a.port}`, grpc.ServerCredentials.createInsecure());
      this.#grpcServers.push(server);
    }
    const secureAddr = this.#opts.secureGrpcAddr ?? ":15012";
    if (secureAddr !== "" && ca !== undefined) {
      const a = parseAddr(secureAddr, "--secureGrpcAddr");
      const serving = await ca.issueServingCert();
      const server = new grpc.Server({ "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 });
      this.#xds?.addTo(server);
      server.addService(
        istioCertificateServiceDefinition,
        createCertificateServiceHandlers({
          ca,
          trustDomain: this.#mesh?.trustDomain ?? "cluster.local",
          localClusterId: env.clusterId,
          clusterClients: (id) => {
            if (id === env.clusterId) return new RestKubeApi(this.#client);
            const remote = this.#secrets?.cluster(id);
            return remote !== undefined && remote.client instanceof KubeClient
              ? new RestKubeApi(remote.client)
              : undefined;
          },
          remoteClusterIds: () => this.#secrets?.clusterIds() ?? [],
          log: this.#log.child("ca"),
        }),
      );
      const creds = grpc.ServerCredentials.createSsl(
        Buffer.from(ca.rootPem),
        [{ cert_chain: Buffer.from(serving.certPem), private_key: Buffer.from(serving.keyPem) }],
        false,
      );
      this.#ports.secureGrpc = await bind(server, `${a.host}:${a.port}`, creds);
      this.#grpcServers.push(server);
    }
    this.#serving = true;
    this.#log.info("serving xDS", { grpc: this.#ports.grpc, secureGrpc: this.#ports.secureGrpc });
    for (const w of [...this.#servingWaiters]) w();
  }

  #listenHttp(host: string, port: number, handler: http.RequestListener): Promise<number> {
    const server = http.createServer(handler);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        this.#httpServers.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  #handleReadiness(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/ready") {
      this.#ready200(res);
      return;
    }
    res.writeHead(404).end();
  }

  #ready200(res: http.ServerResponse): void {
    if (this.isReady()) {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ready\n");
      return;
    }
    const why: string[] = [];
    if (this.#startError) why.push(this.#startError);
    if (!this.#own?.hasSynced()) {
      const err = this.#own?.lastError() ?? this.#meshError;
      why.push(`own cluster ${this.#opts.env.clusterId} not synced${err ? `: ${err}` : ""}`);
    }
    for (const r of this.#secrets?.debugInfo() ?? [])
      if (r.syncStatus === "syncing") why.push(`remote cluster ${r.id} syncing`);
    res.writeHead(503, { "Content-Type": "text/plain" }).end(`not ready: ${why.join("; ") || "starting"}\n`);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    const json = (v: unknown, status = 200) => {
      res.writeHead(status, { "Content-Type": "application/json" }).end(`${JSON.stringify(v, null, 2)}\n`);
    };
    switch (url.pathname) {
      case "/ready":
        this.#ready200(res);
        return;
      case "/debug/clusterz":
        json(this.clusterz());
        return;
      case "/debug/registryz":
        json(
          this.#aggregate
            .view()
            .services()
            .map((s) => ({ ...s, clusterVips: Object.fromEntries(s.clusterVips) })),
        );
        return;
      case "/debug/endpointz":
      case "/debug/endpointShardz": {
        const view = this.#aggregate.view();
        const out: Record<string, Record<string, Record<string, readonly unknown[]>>> = {};
        for (const s of view.services()) {
          const byPort: Record<string, Record<string, readonly unknown[]>> = {};
          for (const p of s.ports)
            byPort[p.name || String(p.port)] = Object.fromEntries(view.endpoints(s.hostname, p.name));
          out[s.hostname] = byPort;
        }
        json(out);
        return;
      }
      case "/debug/syncz":
        json(this.#xds?.syncz() ?? []);
        return;
      case "/debug/config_dump": {
        const id = url.searchParams.get("proxyID");
        if (!id) {
          json({ error: "pass ?proxyID=<node ID or connection ID>; /debug/syncz lists them" }, 400);
          return;
        }
        const dump = this.#xds?.configDump(id);
        if (dump === undefined)
          json({ error: `proxy ${JSON.stringify(id)} is not connected; /debug/syncz lists those that are` }, 404);
        else json(dump);
        return;
      }
      case "/metrics":
        res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end(
          renderMetrics({
            xds: this.#xds?.metrics(),
            ownClusterId: this.#opts.env.clusterId,
            ownSynced: this.#own?.hasSynced() ?? false,
            remotes: this.#secrets?.debugInfo() ?? [],
            remoteSyncTimeouts: this.#syncTimeouts,
            services: this.#aggregate.view().services().length,
            ready: this.isReady(),
          }),
        );
        return;
      case "/debug":
        json([
          "/ready",
          "/debug/clusterz",
          "/debug/registryz",
          "/debug/endpointz",
          "/debug/syncz",
          "/debug/config_dump?proxyID=",
          "/metrics",
        ]);
        return;
      default:
        res.writeHead(404, { "Content-Type": "text/plain" }).end(`no such page ${url.pathname}; see /debug\n`);
    }
  }

  /** Drains: stops accepting xDS, ends streams (after `graceMs`), stops every registry, closes the monitoring port. */
  async close(graceMs = 2000): Promise<void> {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    for (const w of [...this.#readyWaiters, ...this.#servingWaiters]) w();
    // End the ADS streams first: a gRPC server's graceful shutdown waits for open streams.
    await this.#xds?.close();
    await Promise.all(
      this.#grpcServers.map(
        (s) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              s.forceShutdown();
              resolve();
            }, graceMs);
            s.tryShutdown(() => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    this.#secrets?.close();
    await Promise.allSettled(this.#tasks);
    await Promise.all(
      this.#httpServers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  }
}
