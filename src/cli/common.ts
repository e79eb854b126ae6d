/**
 * What the mesh commands share: reaching a cluster from `--kubeconfig`/`--context` (through
 * @kubernetes/client-node's KubeConfig, as kubectl reads it), the CLI's version, and turning
 * failures into one-line messages with a non-zero exit code.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { CommanderError } from "commander";
import { RestKubeApi } from "../ca/kube-adapter.js";
import { ConfigError, errorMessage, isthmusVersion, processEnv } from "../base/index.js";
import { loadKubeConfig } from "../kube/index.js";

/** This checkout's version (package.json): the CLI's version and the default image tag. */
export const cliVersion = isthmusVersion;

export interface KubeFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
}

/** A cluster to talk to: its KubeConfig (for client-node APIs) and our ResourceRef client. */
export interface ClusterAccess {
  readonly kc: KubeConfig;
  readonly api: RestKubeApi;
  /** The context's name, for messages. */
  readonly context: string;
}

/** Opens the cluster named by the flags; throws ConfigError naming the file or context. */
export function openCluster(flags: KubeFlags): ClusterAccess {
  const kc = loadKubeConfig({ kubeconfigPath: flags.kubeconfig, context: flags.context, env: processEnv });
  return { kc, api: new RestKubeApi(kc), context: kc.getCurrentContext() };
}

/** Runs a command body: user errors print `isthmus <cmd>: <message>` and exit 1; usage errors exit 2. */
export async function runCommand(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const message = err instanceof ConfigError ? err.problems.join("\n  ") : errorMessage(err);
    process.stderr.write(`isthmus ${name}: ${message}\n`);
    return 1;
  }
}

/** Collects a repeatable option (`--set a=b --set c=d`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
