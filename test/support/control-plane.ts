/**
 * Set-ups the control plane's tests share (src/discovery/control-plane.test.ts and the
 * test/control-plane*.test.ts scenarios): options for a ControlPlane in cluster1, GETs on its
 * monitoring port, and a proxyless gRPC client that reads endpoints through its xDS port.
 */
import http from "node:http";
import * as grpc from "@grpc/grpc-js";
import type { KubeConfig } from "@kubernetes/client-node";
import { silentLogger } from "../../src/base/index.js";
import type { ControlPlaneOptions, DiscoveryEnv } from "../../src/discovery/index.js";
import { callGrpcEcho } from "../../src/programs/grpc-echo.js";
import type { ClusterDebugInfo } from "../../src/registry/index.js";

/**
 * Options for istiod of cluster1 in network1 (namespace istio-system), silent, monitoring and
 * plaintext xDS on port 0, no TLS port, no CA. `over` replaces any of them; `over.env` any env field.
 */
export function controlPlaneOptions(
  kubeConfig: KubeConfig,
  over: Omit<Partial<ControlPlaneOptions>, "env" | "kubeConfig"> & { env?: Partial<DiscoveryEnv> } = {},
): ControlPlaneOptions {
  const { env, ...rest } = over;
  return {
    env: {
      clusterId: "cluster1",
      namespace: "istio-system",
      podName: "",
      remoteClusterTimeoutMs: 30_000,
      insecureKubeconfigOptions: new Set(),
      network: "network1",
      debounceAfterMs: 100,
      debounceMaxMs: 10_000,
      ...env,
    },
    kubeConfig,
    log: silentLogger,
    monitoringAddr: "127.0.0.1:0",
    grpcAddr: "127.0.0.1:0",
    secureGrpcAddr: "",
    ca: false,
    ...rest,
  };
}

/** GET on 127.0.0.1:`port`, one connection per request (no keep-alive races with the server's idle timeout). */
export function httpGet(port: number | undefined, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      })
      .on("error", reject);
  });
}

/** The rows of /debug/clusterz on monitoring port `port`. */
export async function getClusterz(port: number | undefined): Promise<ClusterDebugInfo[]> {
  return JSON.parse((await httpGet(port, "/debug/clusterz")).text) as ClusterDebugInfo[];
}

/**
 * A proxyless gRPC client of `target` (`xds:///host:port`) that asks the xDS server on
 * 127.0.0.1:`xdsPort` as a sidecar with address `nodeIp` in namespace sample of cluster1.
 * Sets the process-wide GRPC_XDS_BOOTSTRAP_CONFIG, so one such client per test process.
 */
export async function proxylessGrpcClient(opts: {
  xdsPort: number | undefined;
  nodeIp: string;
  target: string;
  channelOptions?: grpc.ChannelOptions;
}): Promise<grpc.Client> {
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      {
        server_uri: `127.0.0.1:${opts.xdsPort}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      },
    ],
    node: {
      id: `sidecar~${opts.nodeIp}~client-0.sample~sample.svc.cluster.local`,
      locality: {},
      metadata: { CLUSTER_ID: "cluster1", NAMESPACE: "sample", GENERATOR: "grpc", NETWORK: "network1" },
    },
  });
  const xds = await import("@grpc/grpc-js-xds");
  xds.register();
  return new grpc.Client(opts.target, grpc.credentials.createInsecure(), opts.channelOptions);
}

/**
 * Calls the gRPC echo service through `client` until `n` answers in a row satisfy `want`
 * (throws after `timeoutMs`); returns the answers and how long it took.
 */
export async function echoUntil(
  client: grpc.Client,
  want: (answers: Set<string>) => boolean,
  opts: { n?: number; timeoutMs: number },
): Promise<{ ms: number; answers: Set<string> }> {
  const start = performance.now();
  for (;;) {
    const answers = new Set<string>();
    for (let i = 0; i < (opts.n ?? 12); i++) answers.add(await callGrpcEcho(client));
    if (want(answers)) return { ms: performance.now() - start, answers };
    if (performance.now() - start > opts.timeoutMs) throw new Error(`answers stayed ${[...answers].join(",")}`);
  }
}
