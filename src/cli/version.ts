/**
 * `isthmus version`: the CLI's version and, when a cluster is reachable, the control plane's
 * (read from the running istiod pods' image tags, as the control plane's build is its image).
 */
import { Command, Option } from "commander";
import { errorMessage } from "../base/index.js";
import type { KubeObjectLike } from "../ca/kube-api.js";
import type { ObjectApi } from "./apply.js";
import { cliVersion, openCluster, runCommand } from "./common.js";
import { ISTIO_NAMESPACE } from "./manifests.js";

/** Versions of the running control plane: one per distinct istiod image tag. */
export async function controlPlaneVersions(api: ObjectApi): Promise<string[]> {
  const pods = (
    await api.list(
      { group: "", version: "v1", resource: "pods" },
      { namespace: ISTIO_NAMESPACE, labelSelector: "app=istiod" },
    )
  ).items as (KubeObjectLike & { spec?: { containers?: { name: string; image?: string }[] } })[];
  const tags = new Set<string>();
  for (const p of pods) {
    const image = p.spec?.containers?.find((c) => c.name === "discovery")?.image ?? "";
    const at = image.lastIndexOf(":");
    if (at > image.lastIndexOf("/")) tags.add(image.slice(at + 1));
  }
  return [...tags].sort();
}

export async function main(argv: string[]): Promise<number> {
  return runCommand("version", async () => {
    const cmd = new Command("version")
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
      .option("--context <name>", "the kubeconfig context whose control plane to ask")
      .option("-c, --kubeconfig <file>", "the kubeconfig file to use")
      .option("--remote [bool]", "also ask the control plane (default true)", "true")
      .option("-s, --short", "print the version numbers only")
      .addOption(new Option("-o, --output <format>", "json for machine-readable output").choices(["json"]));
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<{
      context?: string;
      kubeconfig?: string;
      remote: string | boolean;
      short?: boolean;
      output?: string;
    }>();
    const client = cliVersion();
    const remote = o.remote === true || o.remote === "true";
    let controlPlane: string[] | undefined;
    let why = "";
    if (remote) {
      try {
        controlPlane = await controlPlaneVersions(openCluster(o).api);
        if (controlPlane.length === 0) why = "no istiod pod is running";
      } catch (err) {
        why = errorMessage(err).split("\n")[0] ?? "";
      }
    }
    if (o.output === "json") {
      process.stdout.write(
        `${JSON.stringify({ clientVersion: { version: client }, ...(remote ? { meshVersion: (controlPlane ?? []).map((v) => ({ Component: "pilot", Info: { version: v } })) } : {}) }, null, 2)}\n`,
      );
      return 0;
    }
    if (o.short) {
      process.stdout.write(`${client}\n`);
      return 0;
    }
    process.stdout.write(`client version: ${client}\n`);
    if (remote) {
      const shown =
        controlPlane !== undefined && controlPlane.length > 0 ? controlPlane.join(", ") : `unknown (${why})`;
      process.stdout.write(`control plane version: ${shown}\n`);
    }
    return 0;
  });
}
