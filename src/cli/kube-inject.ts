/**
 * `isthmus kube-inject -f FILE`: injects the sidecar into the pods and pod templates of a
 * manifest, with the same pure function as the webhook. The mesh values come from the
 * cluster's ConfigMap `istio-sidecar-injector` (as istioctl), or from flags with `--offline`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Command } from "commander";
import { errorMessage } from "../base/index.js";
import { httpStatusOf } from "../ca/kube-api.js";
import { defaultInjectValues, type InjectValues, injectYaml, parseInjectValues } from "../inject/index.js";
import { cliVersion, openCluster, runCommand } from "./common.js";
import { ISTIO_NAMESPACE, kindRefs } from "./manifests.js";
import { DEFAULT_HUB } from "./operator.js";

interface Flags {
  filename: string;
  output?: string;
  context?: string;
  kubeconfig?: string;
  offline?: boolean;
  hub?: string;
  tag?: string;
  clusterId?: string;
  network?: string;
  meshId?: string;
  trustDomain?: string;
}

async function valuesFromCluster(flags: Flags): Promise<InjectValues> {
  const cluster = openCluster(flags);
  const ref = kindRefs.ConfigMap;
  if (ref === undefined) throw new Error("no REST mapping for ConfigMap");
  try {
    const cm = await cluster.api.get(ref, ISTIO_NAMESPACE, "istio-sidecar-injector");
    const parsed = parseInjectValues((cm.data as Record<string, string> | undefined)?.values ?? "");
    if (!parsed.ok) throw new Error(parsed.reasons.join("; "));
    return parsed.value;
  } catch (err) {
    if (httpStatusOf(err) === 404) {
      throw new Error(
        `ConfigMap ${ISTIO_NAMESPACE}/istio-sidecar-injector not found in context "${cluster.context}"; install the control plane first, or pass --offline with --cluster-id, --network and --mesh-id`,
      );
    }
    throw err;
  }
}

export async function main(argv: string[]): Promise<number> {
  return runCommand("kube-inject", async () => {
    const cmd = new Command("kube-inject")
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
      .requiredOption("-f, --filename <file>", "manifest to inject (- for stdin)")
      .option("-o, --output <file>", "write here instead of stdout")
      .option("--context <name>", "read the injector's values from this context")
      .option("-c, --kubeconfig <file>", "the kubeconfig file to use")
      .option("--offline", "do not contact a cluster; use the flags below and Istio's defaults")
      .option("--hub <hub>", "image registry (offline)")
      .option("--tag <tag>", "image tag (offline)")
      .option("--cluster-id <id>", "cluster ID (offline)")
      .option("--network <name>", "network (offline)")
      .option("--mesh-id <id>", "mesh ID (offline)")
      .option("--trust-domain <domain>", "trust domain (offline)");
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<Flags>();
    let values: InjectValues;
    if (o.offline) {
      const d = defaultInjectValues(o.hub ?? DEFAULT_HUB, o.tag ?? cliVersion());
      values = {
        ...d,
        clusterId: o.clusterId ?? d.clusterId,
        network: o.network ?? d.network,
        meshId: o.meshId ?? d.meshId,
        trustDomain: o.trustDomain ?? d.trustDomain,
      };
    } else {
      values = await valuesFromCluster(o);
    }
    let text: string;
    try {
      text = o.filename === "-" ? readFileSync(0, "utf8") : readFileSync(o.filename, "utf8");
    } catch (err) {
      throw new Error(`cannot read ${o.filename}: ${errorMessage(err)}`);
    }
    const result = injectYaml(text, values);
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    if (o.output !== undefined) writeFileSync(o.output, result.yaml);
    else process.stdout.write(result.yaml);
    return 0;
  });
}
