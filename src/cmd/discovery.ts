/**
 * `isthmus discovery`: the control plane (istiod). Runs in a pod with in-cluster config or
 * outside any cluster with --kubeconfig/--context; configured by istiod's environment
 * (CLUSTER_ID, POD_NAMESPACE, PILOT_*, NETWORK) and the `istio` ConfigMap. SIGTERM drains.
 */
import { existsSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { ConfigError, type LogLevel, createLogger, errorMessage, processEnv } from "../base/index.js";
import { ControlPlane, defaultXdsBackend, readDiscoveryEnv } from "../discovery/index.js";
import { loadKubeConfig } from "../kube/index.js";

interface Flags {
  kubeconfig?: string;
  context?: string;
  monitoringAddr: string;
  grpcAddr: string;
  secureGrpcAddr: string;
  httpAddr: string;
  webhookAddr: string;
  caDir?: string;
}

export async function main(argv: string[]): Promise<number> {
  const cmd = new Command("isthmus discovery")
    .description("Run the control plane (istiod): registry of every cluster, xDS server, CA, debug and metrics")
    .option(
      "--kubeconfig <file>",
      "kubeconfig of the cluster this control plane runs in (default: in-cluster, then $KUBECONFIG)",
    )
    .option("--context <name>", "kubeconfig context to use")
    .option("--monitoringAddr <addr>", "address for /ready, /debug and /metrics", ":15014")
    .option("--grpcAddr <addr>", 'address for plaintext xDS ("" disables)', ":15010")
    .option("--secureGrpcAddr <addr>", 'address for xDS and the CA over TLS ("" disables)', ":15012")
    .option(
      "--httpAddr <addr>",
      'also serve /ready here when the port is free, as istiod does on 8080 ("" disables)',
      ":8080",
    )
    .option("--caDir <dir>", "where the cacerts Secret is mounted (default /etc/cacerts when it exists)")
    // istiod flags the charts pass; accepted so the same Deployment runs, without effect here.
    .option("--domain <suffix>", "DNS domain suffix (only cluster.local is supported)", "cluster.local")
    .option("--log_output_level <levels>", "accepted for compatibility with istiod's arguments")
    .option("--keepaliveMaxServerConnectionAge <duration>", "accepted for compatibility with istiod's arguments")
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  let flags: Flags & { domain: string };
  try {
    cmd.parse(argv, { from: "user" });
    flags = cmd.opts<Flags & { domain: string }>();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  if (flags.domain !== "cluster.local") {
    process.stderr.write(`isthmus discovery: --domain ${flags.domain}: only cluster.local is supported\n`);
    return 2;
  }
  const level = (processEnv.get("ISTHMUS_LOG_LEVEL") ?? "info") as LogLevel;
  const log = createLogger({
    level: ["debug", "info", "warn", "error"].includes(level) ? level : "info",
    scope: "discovery",
  });
  let cp: ControlPlane;
  try {
    const env = readDiscoveryEnv(processEnv);
    const kubeConfig = loadKubeConfig({
      env: processEnv,
      ...(flags.kubeconfig ? { kubeconfigPath: flags.kubeconfig } : {}),
      ...(flags.context ? { context: flags.context } : {}),
    });
    const caDir = flags.caDir ?? (existsSync("/etc/cacerts/ca-cert.pem") ? "/etc/cacerts" : undefined);
    cp = new ControlPlane({
      env,
      kubeConfig,
      log,
      monitoringAddr: flags.monitoringAddr,
      grpcAddr: flags.grpcAddr,
      secureGrpcAddr: flags.secureGrpcAddr,
      readinessAddr: flags.httpAddr,
      webhookAddr: flags.webhookAddr,
      xds: defaultXdsBackend,
      ...(caDir ? { caDir } : {}),
    });
    log.info("starting", {
      cluster: env.clusterId,
      namespace: env.namespace,
      server: kubeConfig.getCurrentCluster()?.server,
    });
    await cp.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`isthmus discovery: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`isthmus discovery: ${errorMessage(err)}\n`);
    return 1;
  }
  log.info("monitoring", { port: cp.ports.monitoring });
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info("draining", { signal: sig });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await cp.close();
  log.info("stopped");
  return 0;
}
