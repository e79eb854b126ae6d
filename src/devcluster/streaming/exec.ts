/**
 * What exec, attach and port-forward need from a pod, independent of the wire protocol:
 * finding the target container, starting a command in its namespaces, the Status that ends
 * an exec, and a relay to a port inside the pod's network namespace.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { KubeObject } from "../api/types.js";
import type { LocalNode, RunningContainer } from "../node/index.js";
import { privilegeArgs } from "../node/index.js";

/** A Status for the exec error channel (v4/v5): success, or failure with the exit code as Kubernetes encodes it. */
export function exitStatus(code: number | undefined, message?: string): Record<string, unknown> {
  if (code === 0) return { metadata: {}, status: "Success" };
  if (code === undefined) {
    return {
      metadata: {},
      status: "Failure",
      message: message ?? "command failed",
      reason: "InternalError",
      code: 500,
    };
  }
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${message ?? ""}], exit code ${code}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(code) }] },
  };
}

/** The outcome of looking up a container for exec: the process to enter, or why not (HTTP code + message). */
export type ContainerTarget =
  | { readonly ok: true; readonly container: string; readonly running: RunningContainer }
  | { readonly ok: false; readonly code: number; readonly message: string };

/** Finds the running container `name` (default: the pod's first container) on the node. */
export function findContainer(node: LocalNode, pod: KubeObject, name: string | null): ContainerTarget {
  const ns = pod.metadata.namespace ?? "default";
  const podName = pod.metadata.name ?? "";
  const worker = node.worker(ns, podName, pod.metadata.uid);
  const spec = (pod.spec ?? {}) as { containers?: { name: string }[] };
  const container = name || spec.containers?.[0]?.name || "";
  if (!worker) return { ok: false, code: 400, message: `pod ${ns}/${podName} is not running on node ${node.nodeName}` };
  if (!worker.containerNames().includes(container)) {
    return {
      ok: false,
      code: 400,
      message: `container ${container} is not valid for pod ${podName}; choose one of: [${worker.containerNames().join(" ")}]`,
    };
  }
  const running = worker.running(container);
  if (!running) {
    return {
      ok: false,
      code: 400,
      message: `container ${container} is not running in pod ${podName}; wait until it runs`,
    };
  }
  return { ok: true, container, running };
}

/** Starts `command` inside the container's mount and network namespaces, as its user, with its environment. */
export function spawnInContainer(running: RunningContainer, command: readonly string[], stdin: boolean): ChildProcess {
  const args = ["-t", String(running.pid), "-m", "-n", "-u"];
  // As the container's own processes: its workingDir, else "/" (never the daemon's folder).
  args.push(`--wdns=${running.workingDir || "/"}`);
  return spawn("nsenter", [...args, "--", ...privilegeArgs(running.security), ...command], {
    env: { ...running.env },
    stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
  });
}

const relayScript = `
const net = require("node:net");
const port = Number(process.argv[1]);
const sock = net.connect({ host: "127.0.0.1", port });
sock.on("connect", () => { process.stdin.pipe(sock); sock.pipe(process.stdout); });
sock.on("error", (e) => { process.stderr.write("failed to connect to localhost:" + port + " inside the pod: " + e.message); process.exit(1); });
sock.on("close", () => process.exit(0));
`;

/**
 * A relay to `127.0.0.1:port` inside the pod's network namespace (where a port-forward connects):
 * a small process whose stdin/stdout are the connection; it writes the reason to stderr and
 * exits 1 when the connection fails.
 */
export function relayToPodPort(netns: string, port: number): ChildProcess {
  return spawn("nsenter", [`--net=/run/netns/${netns}`, "--", process.execPath, "-e", relayScript, String(port)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
}
