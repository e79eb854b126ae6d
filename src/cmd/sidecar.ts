/**
 * `isthmus proxy sidecar`: the istio-proxy container's main. Reads the injected environment
 * (as Istio's pilot-agent does), gets a certificate from the control plane's CA, and runs the
 * sidecar until SIGTERM, then drains.
 */
import { readFileSync } from "node:fs";
import { createLogger, errorMessage, isthmusVersion, type LogLevel } from "../base/index.js";
import { requestCertificate } from "../proxy/identity/ca-client.js";
import { Sidecar } from "../proxy/sidecar.js";

const env = process.env;

function need(name: string): string {
  const v = env[name];
  if (v === undefined || v === "")
    throw new Error(`${name} is not set; the injected istio-proxy container sets it (is this pod injected?)`);
  return v;
}

function readFileRetrying(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${what} at ${path}: ${errorMessage(err)}`);
  }
}

/** Pod labels from the downward API file (`key="value"` lines), for the node's LABELS metadata. */
function podLabels(path: string): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync(path, "utf8").split("\n")) {
      const m = /^([^=]+)="(.*)"$/.exec(line.trim());
      if (m?.[1] && m[2] !== undefined) out[m[1]] = m[2];
    }
    return out;
  } catch {
    // Not every pod mounts pod info; labels then come only from the control plane's view.
    return {};
  }
}

export async function main(argv: string[]): Promise<number> {
  const levelFlag = argv
    .find((a) => a.startsWith("--log_output_level="))
    ?.split(":")
    .at(-1);
  const level: LogLevel = levelFlag === "debug" ? "debug" : levelFlag === "warn" ? "warn" : "info";
  const log = createLogger({ level, scope: "sidecar" });
  let sidecar: Sidecar;
  try {
    const podName = need("POD_NAME");
    const namespace = need("POD_NAMESPACE");
    const ip = need("INSTANCE_IP");
    const serviceAccount = env.SERVICE_ACCOUNT || "default";
    const clusterId = env.ISTIO_META_CLUSTER_ID || "Kubernetes";
    const trustDomain = env.TRUST_DOMAIN || "cluster.local";
    const proxyConfig = JSON.parse(env.PROXY_CONFIG || "{}") as { discoveryAddress?: string };
    const discoveryAddress = proxyConfig.discoveryAddress || env.CA_ADDR || "istiod.istio-system.svc:15012";
    const caAddress = env.CA_ADDR || discoveryAddress;
    const tokenPath = env.ISTHMUS_TOKEN_PATH || "/var/run/secrets/tokens/istio-token";
    const rootPath = env.ISTHMUS_ROOT_CERT_PATH || "/var/run/secrets/istio/root-cert.pem";
    const spiffeId = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
    const metadata: Record<string, string | Record<string, string>> = {
      NAMESPACE: namespace,
      INSTANCE_IPS: ip,
      CLUSTER_ID: clusterId,
      LABELS: podLabels("/etc/istio/pod/labels"),
      // As pilot-agent reports its build: istiod's /debug/syncz and `proxy-status` VERSION read it.
      ISTIO_VERSION: isthmusVersion(),
    };
    for (const [k, v] of Object.entries(env)) {
      if (k.startsWith("ISTIO_META_") && v !== undefined && k !== "ISTIO_META_CLUSTER_ID")
        metadata[k.slice("ISTIO_META_".length)] = v;
    }
    const serverName = (discoveryAddress.split(":")[0] ?? "").trim();
    sidecar = new Sidecar({
      workload: {
        podName,
        namespace,
        workloadName: env.ISTIO_META_WORKLOAD_NAME || podName,
        clusterId,
        serviceAccount,
        trustDomain,
      },
      node: { id: `sidecar~${ip}~${podName}.${namespace}~${namespace}.svc.cluster.local`, metadata },
      discoveryAddress,
      discoveryTls: discoveryAddress.endsWith(":15010")
        ? undefined
        : { rootPem: readFileRetrying(rootPath, "the mesh root certificate"), serverName },
      certificates: () =>
        requestCertificate({
          caAddress,
          caRootPem: readFileRetrying(rootPath, "the mesh root certificate"),
          token: readFileRetrying(tokenPath, "the istio-ca service-account token").trim(),
          clusterId,
          spiffeId,
          ttlSeconds: 86_400,
        }),
      log,
    });
  } catch (err) {
    log.error(`cannot start: ${errorMessage(err)}`);
    return 1;
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info("draining", { signal });
      void sidecar.close().then(resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  try {
    await sidecar.start();
  } catch (err) {
    log.error(`cannot start listeners: ${errorMessage(err)}`);
    sidecar.destroy();
    return 1;
  }
  log.info("sidecar started", { ports: JSON.stringify(sidecar.ports) });
  await stopped;
  return 0;
}
