/**
 * Test-only: a complete local API server on 127.0.0.1:0 (LocalApi store, the auth folder's PKI,
 * tokens, RBAC and review resources, this folder's HTTPS server) and a kubeconfig for it.
 * Used by test/apiserver-*.test.ts. Not for production wiring (the daemon composes these itself,
 * with the same wireAuth).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, silentLogger } from "../../../base/index.js";
import type { Authorizer, PodStreams, VirtualResource } from "../../api/plugins.js";
import { type KubeObject, Resources, isApiError } from "../../api/types.js";
import { createClusterPki, type ServiceAccountTokens, wireAuth } from "../../auth/index.js";
import { mergeIntoKubeconfig } from "../../cluster/kubeconfig.js";
import { startControllers } from "../../controllers/index.js";
import { LocalApi } from "../index.js";
import { ApiHttpServer } from "./server.js";

export interface TestApiServer {
  readonly api: LocalApi;
  readonly http: ApiHttpServer;
  readonly tokens: ServiceAccountTokens;
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly caPem: string;
  readonly adminToken: string;
  /** A temp folder removed by close(). */
  readonly dir: string;
  /** Writes a kubeconfig (context "test") for `token` (default: the admin's) into dir; returns its path. */
  writeKubeconfig(token?: string, name?: string): Promise<string>;
  /** A bearer token for a ServiceAccount (created if missing) in `namespace`. */
  serviceAccountToken(namespace: string, name: string): Promise<string>;
  close(): Promise<void>;
}

export interface TestApiServerOptions {
  historyWindow?: number;
  log?: Logger;
  podStreams?: PodStreams;
  /** Replaces RBAC (e.g. to test 403 wording with a fixed decision). */
  authorizer?: Authorizer;
  maxBodyBytes?: number;
  minWatchTimeoutSeconds?: number;
  /** Run the cluster's controllers (namespace deletion, Deployment → ReplicaSet → Pod, ...). */
  controllers?: boolean;
}

/** Starts the whole stack; call close() (in t.after). */
export async function startTestApiServer(opts: TestApiServerOptions = {}): Promise<TestApiServer> {
  const log = opts.log ?? silentLogger;
  const dir = await mkdtemp(join(tmpdir(), "isthmus-apiserver-test-"));
  const pki = await createClusterPki({ clusterName: "http-test", apiServerIps: ["127.0.0.1"], apiServerDnsNames: [] });
  const virtualResources = new Map<string, VirtualResource>();
  const api = new LocalApi({
    serviceCidr: "10.201.251.0/24",
    clusterName: "http-test",
    log,
    virtualResources,
    ...(opts.historyWindow !== undefined ? { historyWindow: opts.historyWindow } : {}),
  });
  await api.start();
  const client = api.client();
  const { tokens, authenticator, authorizer } = await wireAuth({
    client,
    pki,
    virtualResources,
    ...(opts.authorizer ? { authorizer: opts.authorizer } : {}),
  });
  const http = new ApiHttpServer({
    api: client,
    registry: api.resources,
    authenticator,
    authorizer,
    tls: { cert: pki.servingCertPem, key: pki.servingKeyPem },
    host: "127.0.0.1",
    port: 0,
    log,
    ...(opts.podStreams ? { podStreams: opts.podStreams } : {}),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    ...(opts.minWatchTimeoutSeconds !== undefined ? { minWatchTimeoutSeconds: opts.minWatchTimeoutSeconds } : {}),
  });
  const stopControllers = new AbortController();
  let controllersDone: Promise<void> | undefined;
  if (opts.controllers) {
    const running = await startControllers({
      client,
      clusterName: "http-test",
      rootCaPem: pki.caCertPem,
      tokens,
      log,
      signal: stopControllers.signal,
      discovery: () => api.resources.all(),
    });
    controllersDone = running.done;
  }
  const { port } = await http.listen();
  const url = `https://127.0.0.1:${port}`;
  let n = 0;
  return {
    api,
    http,
    tokens,
    url,
    caPem: pki.caCertPem,
    adminToken: pki.adminToken,
    dir,
    async writeKubeconfig(token = pki.adminToken, name = `kubeconfig-${n++}`) {
      const path = join(dir, name);
      mergeIntoKubeconfig(path, { name: "test", server: url, caPem: pki.caCertPem, token });
      return path;
    },
    async serviceAccountToken(namespace, name) {
      let sa: KubeObject;
      try {
        sa = await client.get(Resources.serviceaccounts, namespace, name);
      } catch (err) {
        if (!isApiError(err, 404)) throw err;
        sa = await client.create(Resources.serviceaccounts, {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name, namespace },
        });
      }
      const issued = await tokens.issue({ namespace, serviceAccount: { name, uid: sa.metadata.uid ?? "" } });
      return issued.token;
    },
    async close() {
      stopControllers.abort();
      await controllersDone;
      await http.close();
      await api.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
