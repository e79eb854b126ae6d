/**
 * `isthmus devcluster --name NAME`: one local cluster, in the foreground. `isthmus cluster
 * create/start` runs it detached. The composition root of a local cluster: network, PKI,
 * store and API semantics, auth and admission, controllers, service networking and DNS, the
 * node, and the HTTPS API server, started in that order and stopped in reverse.
 * A control socket (`<state>/control.sock`) lets tests stop and start the API server alone,
 * as an outage of kube-apiserver would look (pods keep running).
 */
import { existsSync, rmSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger, errorMessage, type Logger } from "../base/index.js";
import type { VirtualResource } from "../devcluster/api/plugins.js";
import { ApiHttpServer } from "../devcluster/apiserver/http/index.js";
import { LocalApi } from "../devcluster/apiserver/index.js";
import { createClusterPki, loadPki, savePki, WebhookAdmission, wireAuth } from "../devcluster/auth/index.js";
import { clusterDir, isthmusHome, readSpec, writeStatus } from "../devcluster/cluster/index.js";
import { startControllers } from "../devcluster/controllers/index.js";
import {
  allocateCluster,
  ensureNetwork,
  startServiceNetworking,
  stopCluster,
  sweep,
} from "../devcluster/network/index.js";
import { checkNodePrivileges, startNode } from "../devcluster/node/index.js";
import { createPodStreams } from "../devcluster/streaming/index.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Teardown steps, run in reverse order of registration; each failure is logged, never fatal. */
class Teardown {
  readonly #steps: { what: string; run: () => Promise<unknown> | unknown }[] = [];
  constructor(private readonly log: Logger) {}
  add(what: string, run: () => Promise<unknown> | unknown): void {
    this.#steps.push({ what, run });
  }
  async run(): Promise<void> {
    for (const step of this.#steps.reverse()) {
      try {
        await step.run();
      } catch (err) {
        this.log.warn(`stopping: ${step.what} failed`, { error: errorMessage(err) });
      }
    }
    this.#steps.length = 0;
  }
}

function serviceIp(cidr: string, offset: number): string {
  const [base = ""] = cidr.split("/");
  const parts = base.split(".").map(Number);
  return `${parts[0]}.${parts[1]}.${parts[2]}.${(parts[3] ?? 0) + offset}`;
}

/** The control socket: GET /status, POST /apiserver/stop, POST /apiserver/start. */
function startControlSocket(path: string, api: ApiHttpServer, log: Logger): Promise<http.Server> {
  if (existsSync(path)) rmSync(path);
  let listening = true;
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(`${JSON.stringify(body)}\n`);
    };
    const run = async () => {
      if (req.method === "GET" && req.url === "/status")
        return reply(200, { apiServer: listening ? "running" : "stopped" });
      if (req.method === "POST" && req.url === "/apiserver/stop") {
        if (listening) await api.stopListening();
        listening = false;
        log.warn("API server stopped on request (pods keep running)");
        return reply(200, { apiServer: "stopped" });
      }
      if (req.method === "POST" && req.url === "/apiserver/start") {
        if (!listening) await api.listen();
        listening = true;
        log.info("API server started again on request");
        return reply(200, { apiServer: "running" });
      }
      return reply(404, { error: "use GET /status, POST /apiserver/stop or POST /apiserver/start" });
    };
    run().catch((err) => reply(500, { error: errorMessage(err) }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve(server));
  });
}

async function runCluster(name: string, log: Logger, stop: AbortSignal): Promise<void> {
  const home = isthmusHome(process.env);
  const dir = clusterDir(home, name);
  const spec = readSpec(dir);
  if (spec === undefined)
    throw new Error(`cluster "${name}" has no state in ${dir}; create it with: isthmus cluster create ${name}`);
  const teardown = new Teardown(log);
  try {
    const missing = checkNodePrivileges();
    if (missing) throw new Error(missing);

    const { network, previousOwnerDied } = await allocateCluster({
      home,
      clusterName: name,
      network: spec.network,
      ...(spec.apiPort > 0 ? { apiPort: spec.apiPort } : {}),
      ownerPid: process.pid,
    });
    if (previousOwnerDied) {
      log.info("removing what a previous run of this cluster left behind");
      await sweep(network);
    }
    teardown.add("network", () => stopCluster(network));
    await ensureNetwork(network);
    log.info("network ready", {
      network: network.networkName,
      gateway: network.gateway,
      pods: network.podCidr,
      services: network.serviceCidr,
    });

    const pkiDir = join(dir, "pki");
    let pki: Awaited<ReturnType<typeof loadPki>>;
    if (existsSync(join(pkiDir, "ca.crt"))) pki = await loadPki(pkiDir);
    else {
      pki = await createClusterPki({
        clusterName: name,
        apiServerIps: [network.gateway, serviceIp(network.serviceCidr, 1)],
        apiServerDnsNames: [],
      });
      await savePki(pkiDir, pki);
    }

    const virtualResources = new Map<string, VirtualResource>();
    const admission = new WebhookAdmission({ log: log.child("admission") });
    const api = new LocalApi({
      stateDir: join(dir, "store"),
      serviceCidr: network.serviceCidr,
      clusterName: name,
      admission,
      virtualResources,
      log: log.child("store"),
    });
    await api.start();
    teardown.add("store", () => api.close());
    const client = api.client();
    const { tokens, authenticator, authorizer } = await wireAuth({ client, pki, virtualResources });

    const controllersStop = new AbortController();
    const controllers = await startControllers({
      client,
      clusterName: name,
      rootCaPem: pki.caCertPem,
      tokens,
      log,
      signal: controllersStop.signal,
      discovery: () => api.resources.all(),
    });
    teardown.add("controllers", async () => {
      controllersStop.abort();
      await controllers.done;
    });

    const services = await startServiceNetworking({ client, net: network, log: log.child("services") });
    teardown.add("service proxy and DNS", () => services.close());

    const node = await startNode({
      client,
      clusterName: name,
      nodeName: `${name}-control-plane`,
      network,
      repoRoot,
      stateDir: dir,
      log: log.child("node"),
    });
    teardown.add("node", () => node.stop());

    const server = new ApiHttpServer({
      api: client,
      registry: api.resources,
      authenticator,
      authorizer,
      podStreams: createPodStreams({ node, log: log.child("streams") }),
      tls: { cert: pki.servingCertPem, key: pki.servingKeyPem },
      host: network.gateway,
      port: network.apiPort,
      log: log.child("http"),
    });
    const address = await server.listen();
    teardown.add("API server", () => server.close());
    await api.ensureKubernetesService({ ip: address.host, port: address.port });

    const control = await startControlSocket(join(dir, "control.sock"), server, log);
    teardown.add("control socket", () => new Promise((r) => control.close(r)));

    const serverUrl = `https://${address.host}:${address.port}`;
    writeStatus(dir, { phase: "Ready", pid: process.pid, server: serverUrl });
    log.info("cluster ready", { server: serverUrl });

    await new Promise<void>((resolve) => {
      if (stop.aborted) resolve();
      else stop.addEventListener("abort", () => resolve(), { once: true });
    });
    writeStatus(dir, { phase: "Stopping", pid: process.pid, server: serverUrl });
    log.info("stopping");
  } finally {
    await teardown.run();
  }
}

export async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf("--name");
  const name = i >= 0 ? argv[i + 1] : undefined;
  if (!name) {
    process.stderr.write("usage: isthmus devcluster --name NAME (normally started by `isthmus cluster create`)\n");
    return 64;
  }
  const log = createLogger({
    scope: `devcluster/${name}`,
    level: process.env.ISTHMUS_LOG_LEVEL === "debug" ? "debug" : "info",
  });
  const dir = clusterDir(isthmusHome(process.env), name);
  const stop = new AbortController();
  process.once("SIGTERM", () => stop.abort());
  process.once("SIGINT", () => stop.abort());
  writeStatus(dir, { phase: "Starting", pid: process.pid });
  try {
    await runCluster(name, log, stop.signal);
  } catch (err) {
    log.error(`cluster failed: ${errorMessage(err)}`);
    writeStatus(dir, { phase: "Failed", pid: process.pid, message: errorMessage(err) });
    return 1;
  }
  writeStatus(dir, { phase: "Stopped", pid: process.pid });
  log.info("stopped");
  return 0;
}
