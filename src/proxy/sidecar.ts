/**
 * The sidecar, assembled: its certificate (from the mesh CA, renewed at half its lifetime),
 * its configuration (ADS from the control plane, translated and validated, NACKed with a
 * reason when unusable, last good kept), the capture listeners (15001 outbound, 15006
 * inbound) and the local admin servers. Keeps serving what it has when the control plane
 * goes away; the xDS client reconnects by itself.
 */
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { errorMessage, type Logger } from "../base/index.js";
import { resourceToJson, TypeUrl, XdsClient, type XdsClientNode, xdsRegistry } from "../xds/index.js";
import { startAdminServers } from "./admin/admin.js";
import { assembleConfig, dependentNames, type ResourcesByType } from "./config/assemble.js";
import { InboundServer } from "./inbound/listener.js";
import { OutboundServer } from "./outbound/listener.js";
import { ProxyRuntime, type WorkloadInfo } from "./runtime.js";
import type { WorkloadCertificate } from "./tls/identity.js";

/** Where the certificate comes from: the CA (production) or a fixed one (tests). */
export type CertificateProvider = () => Promise<WorkloadCertificate>;

export interface SidecarOptions {
  readonly workload: WorkloadInfo;
  readonly node: XdsClientNode;
  /** `host:port` of the control plane's xDS (15012 with TLS, 15010 plaintext). */
  readonly discoveryAddress: string;
  /** TLS to the control plane, verified with the mesh root; undefined = plaintext (15010). */
  readonly discoveryTls?: { readonly rootPem: string; readonly serverName: string };
  readonly certificates: CertificateProvider;
  readonly ports?: { outbound?: number; inbound?: number; admin?: number; health?: number; prometheus?: number };
  /** Host the capture listeners bind (default all addresses). */
  readonly listenHost?: string;
  /** Tests without iptables: fixed destinations for the capture listeners. */
  readonly fixedOutboundDestination?: { address: string; port: number };
  readonly fixedInboundPort?: number;
  readonly log: Logger;
}

const watchedTypes = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
] as const;

export class Sidecar {
  readonly runtime: ProxyRuntime;
  readonly #opts: SidecarOptions;
  readonly #log: Logger;
  #xds: XdsClient | undefined;
  #outbound: OutboundServer | undefined;
  #inbound: InboundServer | undefined;
  #admin: { close(): void; ports: { admin: number; health: number; prometheus: number } } | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #cert: WorkloadCertificate | undefined;
  #configured = false;
  #lastNack: string | undefined;
  #closed = false;

  constructor(opts: SidecarOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.runtime = new ProxyRuntime(opts.workload, { log: opts.log.child("datapath") });
  }

  /** Ports actually bound (after start). */
  get ports() {
    return { outbound: this.#outboundPort, inbound: this.#inboundPort, ...(this.#admin?.ports ?? {}) };
  }
  #outboundPort = 0;
  #inboundPort = 0;
  /** Why the last certificate request failed, until one succeeds. */
  #certError: string | undefined;

  /** Whether the sidecar has a certificate and has accepted its first complete configuration. */
  readiness(): { ready: boolean; reason: string } {
    if (this.#cert === undefined)
      return {
        ready: false,
        // The CA's refusal (an unknown cluster ID, a rejected token) is what the user must fix: say it here too.
        reason: `waiting for a workload certificate${this.#certError ? `; the CA said: ${this.#certError}` : ""}`,
      };
    if (!this.#configured)
      return { ready: false, reason: `waiting for configuration from ${this.#opts.discoveryAddress}` };
    return { ready: true, reason: "" };
  }

  /** The last NACK reason, if the current configuration was refused. */
  get lastNack(): string | undefined {
    return this.#lastNack;
  }

  async start(): Promise<void> {
    const p = this.#opts.ports ?? {};
    this.#admin = await startAdminServers(
      { runtime: this.runtime, configDump: () => this.configDump(), isReady: () => this.readiness() },
      {
        admin: p.admin ?? 15000,
        health: p.health ?? 15021,
        prometheus: p.prometheus ?? 15090,
        ...(this.#opts.listenHost ? { host: this.#opts.listenHost } : {}),
      },
    );
    this.#outbound = new OutboundServer({
      runtime: this.runtime,
      port: p.outbound ?? 15001,
      ...(this.#opts.listenHost ? { host: this.#opts.listenHost } : {}),
      ...(this.#opts.fixedOutboundDestination ? { fixedDestination: this.#opts.fixedOutboundDestination } : {}),
    });
    this.#inbound = new InboundServer({
      runtime: this.runtime,
      port: p.inbound ?? 15006,
      ...(this.#opts.listenHost ? { host: this.#opts.listenHost } : {}),
      ...(this.#opts.fixedInboundPort !== undefined ? { fixedPort: this.#opts.fixedInboundPort } : {}),
    });
    this.#outboundPort = await this.#outbound.start();
    this.#inboundPort = await this.#inbound.start();
    await this.#renewCertificate();
    this.#startXds();
  }

  async #renewCertificate(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const cert = await this.#opts.certificates();
        this.#certError = undefined;
        this.#installCertificate(cert);
        // Renew at half the lifetime, as Istio's agent does (SECRET_GRACE_PERIOD_RATIO 0.5).
        const lifetime = cert.notAfter.getTime() - Date.now();
        this.#renewTimer = setTimeout(() => void this.#renewCertificate(), Math.max(1000, lifetime / 2));
        this.#renewTimer.unref();
        return;
      } catch (err) {
        const wait = Math.min(30_000, 500 * 2 ** attempt);
        this.#certError = errorMessage(err);
        this.#log.warn("cannot get a workload certificate; retrying", { error: errorMessage(err), retryInMs: wait });
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  }

  #installCertificate(cert: WorkloadCertificate): void {
    this.#cert = cert;
    this.runtime.connector.setCertificate(cert);
    this.#inbound?.setCertificate(cert);
    this.#log.info("workload certificate installed", {
      spiffeId: cert.spiffeId,
      notAfter: cert.notAfter.toISOString(),
    });
  }

  #startXds(): void {
    const tlsOpts = this.#opts.discoveryTls;
    const xds = new XdsClient({
      target: this.#opts.discoveryAddress,
      node: this.#opts.node,
      ...(tlsOpts
        ? {
            credentials: grpc.credentials.createSsl(Buffer.from(tlsOpts.rootPem)),
            channelOptions: {
              "grpc.ssl_target_name_override": tlsOpts.serverName,
              "grpc.default_authority": tlsOpts.serverName,
            },
          }
        : {}),
      validate: (typeUrl, resources) => this.#validate(typeUrl, resources),
      log: this.#log.child("xds"),
    });
    this.#xds = xds;
    xds.on("update", () => this.#apply());
    xds.on("nack", (n) => {
      this.#lastNack = `${n.typeUrl}: ${n.message}`;
      this.#log.warn("configuration refused (NACK); keeping the last good one", { type: n.typeUrl, reason: n.message });
    });
    xds.on("disconnected", (why) =>
      this.#log.warn("control plane disconnected; serving the last configuration", { reason: why }),
    );
    xds.on("connected", () =>
      this.#log.info("connected to the control plane", { address: this.#opts.discoveryAddress }),
    );
    xds.subscribe(TypeUrl.Cluster);
    xds.subscribe(TypeUrl.Listener);
    xds.start();
  }

  #current(): Map<string, ReadonlyMap<string, Any>> {
    const m = new Map<string, ReadonlyMap<string, Any>>();
    for (const t of watchedTypes) m.set(t, this.#xds?.resources(t) ?? new Map());
    return m;
  }

  /** NACK reason for a type's candidate resources, judged together with what is held for the other types. */
  #validate(typeUrl: string, resources: ReadonlyMap<string, Any>): string | undefined {
    const byType = this.#current();
    byType.set(typeUrl, resources);
    const result = assembleConfig(byType as ResourcesByType);
    return result.ok ? undefined : result.reasons.join("; ");
  }

  #apply(): void {
    const result = assembleConfig(this.#current());
    if (!result.ok) return;
    const config = result.value;
    this.runtime.setConfig(config);
    const { eds, rds } = dependentNames(config);
    this.#xds?.subscribe(TypeUrl.ClusterLoadAssignment, eds);
    this.#xds?.subscribe(TypeUrl.RouteConfiguration, rds);
    if (!this.#configured && this.#xds) {
      const have = (t: string, names: string[]) => names.every((n) => this.#xds?.resources(t).has(n));
      if (
        this.#xds.version(TypeUrl.Cluster) !== "" &&
        this.#xds.version(TypeUrl.Listener) !== "" &&
        have(TypeUrl.ClusterLoadAssignment, eds) &&
        have(TypeUrl.RouteConfiguration, rds)
      ) {
        this.#configured = true;
        this.#log.info("first configuration applied", {
          clusters: config.clusters.size,
          listeners: config.outbound.size,
        });
      }
    }
  }

  /** Envoy-style config dump of what the sidecar holds, for /config_dump and proxy-config. */
  configDump(): unknown {
    const configs = watchedTypes.map((t) => ({
      typeUrl: t,
      versionInfo: this.#xds?.version(t) ?? "",
      resources: [...(this.#xds?.resources(t) ?? new Map<string, Any>()).values()].map((any) => {
        const msg = anyUnpack(any, xdsRegistry);
        return msg ? resourceToJson(t, msg) : null;
      }),
    }));
    return {
      node: this.#opts.node.id,
      certificate: this.#cert ? { spiffeId: this.#cert.spiffeId, notAfter: this.#cert.notAfter.toISOString() } : null,
      lastNack: this.#lastNack ?? null,
      configs,
    };
  }

  /** Drains: stops accepting, lets open requests finish for up to `drainMs`, then stops. */
  async close(drainMs = 5000): Promise<void> {
    this.#closed = true;
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    this.#xds?.close();
    const closing = Promise.all([this.#outbound?.close(), this.#inbound?.close()]);
    await Promise.race([closing, new Promise((r) => setTimeout(r, drainMs).unref())]);
    this.destroy();
  }

  destroy(): void {
    this.#closed = true;
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    this.#xds?.close();
    this.#outbound?.destroy();
    this.#inbound?.destroy();
    this.#admin?.close();
    this.runtime.connector.close();
  }
}
