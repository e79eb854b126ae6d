// Shared set-up for the sidecar's tests (datapath, h2, robustness, sidecar): mesh certificates,
// workload identities, a client-side configuration for one service, the two sidecar halves on
// loopback, and small clients. It holds no tests; the .test.ts name keeps it test-only code
// (it builds certificates with src/ca, which the proxy itself must not import).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createIntermediateCa, createRootCa, issueKeyedLeaf } from "../ca/pki.js";
import type { Endpoint, InboundPort, ProxyConfig, RetryPolicy, UpstreamCluster } from "./config/types.js";
import type { DownstreamLimits } from "./downstream.js";
import { InboundServer } from "./inbound/listener.js";
import { OutboundServer } from "./outbound/listener.js";
import { ProxyRuntime, type WorkloadInfo } from "./runtime.js";
import type { WorkloadCertificate } from "./tls/identity.js";

/** What node:test's `t` offers for clean-up. */
export type After = { after(fn: () => unknown): void };

export const host = "helloworld.sample.svc.cluster.local";
export const clusterName = `outbound|5000||${host}`;
export const sleepId = "spiffe://cluster.local/ns/sample/sa/sleep";
export const helloId = "spiffe://cluster.local/ns/sample/sa/default";
/** The destination every test outbound listener assumes (a ClusterIP of helloworld:5000). */
export const serviceVip = { address: "10.201.0.7", port: 5000 };

/** The mesh root most tests share; a test wanting a foreign root makes its own with createRootCa. */
export const meshRoot = createRootCa();
export { createRootCa };

/** A workload certificate for `spiffeId`, issued by an intermediate for `kubeCluster` under `root`. */
export async function workloadCert(
  spiffeId: string,
  kubeCluster = "cluster1",
  root: ReturnType<typeof createRootCa> = meshRoot,
): Promise<WorkloadCertificate> {
  const inter = await createIntermediateCa({ parent: await root, cluster: kubeCluster });
  const leaf = await issueKeyedLeaf({
    issuer: { certPem: inter["ca-cert.pem"], keyPem: inter["ca-key.pem"] },
    subject: { kind: "workload", spiffeId },
    ttlMs: 3_600_000,
  });
  return {
    certChainPem: leaf.certPem + inter["ca-cert.pem"],
    keyPem: leaf.keyPem,
    rootPem: inter["root-cert.pem"],
    spiffeId,
    notAfter: new Date(Date.now() + 3_600_000),
  };
}

export const workload = (name: string, clusterId = "cluster1", serviceAccount = name): WorkloadInfo => ({
  podName: `${name}-abc`,
  namespace: "sample",
  workloadName: name,
  clusterId,
  serviceAccount,
  trustDomain: "cluster.local",
});

/** A mesh endpoint of helloworld on loopback `port`, in `clusterId`. */
export const endpoint = (port: number, clusterId = "cluster2"): Endpoint => ({
  address: "127.0.0.1",
  port,
  healthy: true,
  weight: 1,
  tlsMode: "istio",
  clusterId,
  locality: "",
  workload: `helloworld-v2;sample;helloworld;v2;${clusterId}`,
});

/** Istio's default retry policy for sidecars. */
export const istioRetry: RetryPolicy = {
  numRetries: 2,
  retryOn: new Set(["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"]),
  retriableStatusCodes: new Set([503]),
  avoidPreviousHosts: true,
};

export interface MeshConfigOptions {
  readonly endpoints: readonly Endpoint[];
  /** SPIFFE IDs the client accepts from the endpoints (default helloworld's). */
  readonly allowed?: readonly string[];
  /** Default: Istio's retry policy; null for none. */
  readonly retry?: RetryPolicy | null;
  readonly timeoutMs?: number;
  /** Domains of the one virtual host (default helloworld's names). */
  readonly domains?: readonly string[];
  readonly http2?: boolean;
  readonly inbound?: readonly InboundPort[];
}

/** A sidecar configuration with one HTTP service on port 5000 (Envoy cluster `clusterName`). */
export function meshConfig(o: MeshConfigOptions): ProxyConfig {
  const cluster: UpstreamCluster = {
    name: clusterName,
    type: "EDS",
    edsServiceName: clusterName,
    lbPolicy: "LEAST_REQUEST",
    connectTimeoutMs: 2000,
    tls: { allowedSpiffeIds: o.allowed ?? [helloId], sni: clusterName },
    staticEndpoints: [],
    blackHole: false,
    http2: o.http2 ?? false,
  };
  return {
    outbound: new Map([
      [
        "0.0.0.0:5000",
        { name: "0.0.0.0_5000", address: "0.0.0.0", port: 5000, action: { kind: "http", routeConfigName: "5000" } },
      ],
    ]),
    routes: new Map([
      [
        "5000",
        {
          name: "5000",
          virtualHosts: [
            {
              name: `${host}:5000`,
              domains: o.domains ?? ["helloworld.sample:5000", "helloworld.sample", `${host}:5000`],
              routes: [
                {
                  name: "default",
                  prefix: "/",
                  cluster: clusterName,
                  timeoutMs: o.timeoutMs ?? 0,
                  retry: o.retry === null ? undefined : (o.retry ?? istioRetry),
                },
              ],
            },
          ],
        },
      ],
    ]),
    clusters: new Map([[clusterName, cluster]]),
    endpoints: new Map([[clusterName, o.endpoints]]),
    inbound: new Map((o.inbound ?? []).map((p) => [p.port, p])),
  };
}

/** An HTTP/1.1 app on loopback; returns its port. */
export async function startApp(t: After, handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.closeAllConnections());
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

export interface ServerSideOptions {
  readonly appPort: number;
  readonly cert: WorkloadCertificate;
  readonly mode?: InboundPort["mtlsMode"];
  readonly appProtocol?: InboundPort["appProtocol"];
  readonly limits?: DownstreamLimits;
  readonly workload?: WorkloadInfo;
}

/** A server sidecar's inbound listener in front of the app on `appPort`. */
export async function startServerSide(t: After, o: ServerSideOptions): Promise<{ port: number; rt: ProxyRuntime }> {
  const rt = new ProxyRuntime(o.workload ?? workload("helloworld-v2", "cluster2", "default"));
  rt.setConfig(
    meshConfig({
      endpoints: [],
      inbound: [
        {
          port: o.appPort,
          kind: "http",
          targetHost: "127.0.0.1",
          targetPort: o.appPort,
          appProtocol: o.appProtocol ?? "http/1.1",
          mtlsMode: o.mode ?? "PERMISSIVE",
        },
      ],
    }),
  );
  const inbound = new InboundServer({
    runtime: rt,
    host: "127.0.0.1",
    port: 0,
    fixedPort: o.appPort,
    ...(o.limits ? { limits: o.limits } : {}),
  });
  inbound.setCertificate(o.cert);
  const port = await inbound.start();
  t.after(() => inbound.destroy());
  return { port, rt };
}

export interface ClientSideOptions {
  readonly config: ProxyConfig;
  readonly cert: WorkloadCertificate;
  readonly limits?: DownstreamLimits;
  readonly runtime?: ProxyRuntime;
}

/** A client sidecar's outbound listener that treats every connection as one to `serviceVip`. */
export async function startClientSide(
  t: After,
  o: ClientSideOptions,
): Promise<{ port: number; rt: ProxyRuntime; listener: OutboundServer }> {
  const rt = o.runtime ?? new ProxyRuntime(workload("sleep", "cluster1", "sleep"));
  rt.connector.setCertificate(o.cert);
  rt.setConfig(o.config);
  t.after(() => rt.connector.close());
  const listener = new OutboundServer({
    runtime: rt,
    host: "127.0.0.1",
    port: 0,
    fixedDestination: serviceVip,
    ...(o.limits ? { limits: o.limits } : {}),
  });
  const port = await listener.start();
  t.after(() => listener.destroy());
  return { port, rt, listener };
}

/** GET over HTTP/1.1 with a fresh connection; resolves with the status and body. */
export function get(
  port: number,
  hostHeader = "helloworld.sample:5000",
  path = "/hello",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, headers: { host: hostHeader }, agent: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

/** The server side's istio_requests_total labels for a 200 from sleep (cluster1) to helloworld-v2 (cluster2) over mutual TLS. */
export const sleepToHelloOverMtls = {
  reporter: "destination",
  source_principal: sleepId,
  source_workload: "sleep",
  source_workload_namespace: "sample",
  source_cluster: "cluster1",
  destination_workload: "helloworld-v2",
  destination_workload_namespace: "sample",
  destination_cluster: "cluster2",
  destination_principal: helloId,
  response_code: "200",
  connection_security_policy: "mutual_tls",
};
