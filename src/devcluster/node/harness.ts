/**
 * An in-process local cluster without HTTP: API engine (memory), auth (tokens and TokenRequest),
 * controllers, service networking (proxy + DNS) and this node, on a real network. For tests
 * and benchmarks of the node; the daemon wires the same parts in src/cmd/devcluster.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Logger, silentLogger } from "../../base/index.js";
import type { VirtualResource } from "../api/plugins.js";
import type { ApiClient } from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { ApiHttpServer } from "../apiserver/http/index.js";
import { createClusterPki, wireAuth } from "../auth/index.js";
import { mergeIntoKubeconfig } from "../cluster/kubeconfig.js";
import { startControllers } from "../controllers/index.js";
import {
  allocateCluster,
  type ClusterNetwork,
  ensureNetwork,
  startServiceNetworking,
  stopCluster,
  sweep,
  teardownCluster,
} from "../network/index.js";
import { createPodStreams } from "../streaming/index.js";
import { type LocalNode, startNode } from "./node.js";

export interface HarnessCluster {
  readonly name: string;
  readonly home: string;
  readonly client: ApiClient;
  readonly api: LocalApi;
  readonly network: ClusterNetwork;
  readonly node: LocalNode;
  /** With `http: true`: a kubeconfig (admin) for the HTTPS API server on the network's gateway. */
  readonly kubeconfig?: string;
  /** Stops everything and releases the cluster's allocations (and the network with its last cluster). */
  close(): Promise<void>;
}

/** The checkout this file belongs to (its bin/isthmus runs the programs). */
export const repoRoot = resolve(import.meta.dirname, "..", "..", "..");

/**
 * Starts one in-process cluster named `name` of `home` on `network`. Use a unique `home` per
 * test run: kernel object names and allocations derive from it.
 */
export async function startHarnessCluster(opts: {
  home: string;
  name: string;
  network?: string;
  log?: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** Also serve the API over HTTPS (with pod streams) on the gateway address and the allocated port. */
  http?: boolean;
}): Promise<HarnessCluster> {
  const log = opts.log ?? silentLogger;
  const ac = new AbortController();
  const stateDir = mkdtempSync(join(tmpdir(), `isth-${opts.name}-`));
  const { network } = await allocateCluster({
    home: opts.home,
    clusterName: opts.name,
    network: opts.network,
    ownerPid: process.pid,
  });
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    ac.abort();
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
    await stopCluster(network).catch(() => {});
    await teardownCluster({ home: opts.home, clusterName: opts.name });
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    await sweep(network);
    await ensureNetwork(network);
    const pki = await createClusterPki({
      clusterName: opts.name,
      apiServerIps: [network.gateway, network.kubernetesServiceIp],
      apiServerDnsNames: [],
    });
    const virtualResources = new Map<string, VirtualResource>();
    const api = new LocalApi({ serviceCidr: network.serviceCidr, clusterName: opts.name, virtualResources, log });
    await api.start();
    cleanups.push(() => api.close());
    const client = api.client();
    const { tokens, authenticator, authorizer } = await wireAuth({ client, pki, virtualResources });
    const controllers = await startControllers({
      client,
      clusterName: opts.name,
      rootCaPem: pki.caCertPem,
      tokens,
      log,
      signal: ac.signal,
    });
    cleanups.push(() => controllers.done);
    const services = await startServiceNetworking({ client, net: network, log });
    cleanups.push(() => services.close());
    const node = await startNode({
      client,
      clusterName: opts.name,
      nodeName: `${opts.name}-control-plane`,
      network,
      repoRoot,
      stateDir,
      log,
      backoff: opts.backoff,
    });
    cleanups.push(() => node.stop());
    let kubeconfig: string | undefined;
    if (opts.http) {
      const http = new ApiHttpServer({
        api: client,
        registry: api.resources,
        authenticator,
        authorizer,
        podStreams: createPodStreams({ node, log }),
        tls: { cert: pki.servingCertPem, key: pki.servingKeyPem },
        host: network.gateway,
        port: network.apiPort,
        log,
        gitVersion: "v1.32.4",
      });
      const { port } = await http.listen();
      cleanups.push(() => http.close());
      kubeconfig = join(stateDir, "kubeconfig");
      // A new file in a fresh folder: it holds this cluster's context alone.
      mergeIntoKubeconfig(kubeconfig, {
        name: opts.name,
        server: `https://${network.gateway}:${port}`,
        caPem: pki.caCertPem,
        token: pki.adminToken,
      });
    }
    return { name: opts.name, home: opts.home, client, api, network, node, kubeconfig, close };
  } catch (err) {
    await close();
    throw err;
  }
}
