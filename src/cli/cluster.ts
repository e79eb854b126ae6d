/**
 * `isthmus cluster create|delete|list|stop|start|kubeconfig`: local clusters, the way kind
 * manages them. Each cluster is one daemon process (`isthmus devcluster`), started detached
 * so it outlives the command; this module only starts, stops and reads it.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import YAML from "yaml";
import { sleep } from "../base/index.js";
import {
  type ClusterAccess,
  clusterDir,
  isAlive,
  isthmusHome,
  kubeconfigFor,
  kubeconfigPath,
  listClusterNames,
  mergeIntoKubeconfig,
  readSpec,
  readStatus,
  removeFromKubeconfig,
  sweepCluster,
  validateClusterName,
  writeSpec,
} from "../devcluster/cluster/index.js";
import { age, table } from "./output.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const readyTimeoutMs = 180_000;

/** A failure the user can act on: printed as one line, exit code 1. */
class UserError extends Error {}

function accessOf(dir: string, name: string): ClusterAccess {
  const status = readStatus(dir);
  if (!status?.server)
    throw new UserError(`cluster "${name}" has no API server address yet; is it running? (isthmus cluster list)`);
  const caPem = readFileSync(join(dir, "pki", "ca.crt"), "utf8");
  const token = readFileSync(join(dir, "pki", "admin.token"), "utf8").trim();
  return { name, server: status.server, caPem, token };
}

function logTail(dir: string, lines = 15): string {
  try {
    const text = readFileSync(join(dir, "daemon.log"), "utf8").trimEnd().split("\n");
    return text.slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts the daemon for an existing state folder and waits until it reports Ready. */
async function startDaemon(home: string, name: string): Promise<void> {
  const dir = clusterDir(home, name);
  const log = openSync(join(dir, "daemon.log"), "a");
  const child = spawn(process.execPath, [join(repoRoot, "bin", "isthmus"), "devcluster", "--name", name], {
    detached: true,
    // A daemon must not hold on to (or depend on) the folder the user happened to be in.
    cwd: "/",
    stdio: ["ignore", log, log],
    env: { ...process.env, ISTHMUS_HOME: home },
  });
  closeSync(log);
  let exited: number | null | undefined;
  child.on("exit", (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const status = readStatus(dir);
    if (status !== undefined && status.pid === child.pid && status.phase === "Ready") return;
    if (status !== undefined && status.pid === child.pid && status.phase === "Failed") {
      throw new UserError(
        `cluster "${name}" failed to start: ${status.message ?? "see the log"} (log: ${join(dir, "daemon.log")})`,
      );
    }
    if (exited !== undefined) {
      throw new UserError(
        `cluster "${name}" stopped while starting (exit code ${exited}). Last log lines (${join(dir, "daemon.log")}):\n${logTail(dir)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new UserError(
        `cluster "${name}" did not become ready within ${readyTimeoutMs / 1000} s. Last log lines:\n${logTail(dir)}`,
      );
    }
    await sleep(200);
  }
}

/** Sends SIGTERM and waits for the daemon to exit (SIGKILL after `graceMs`). */
async function stopDaemon(dir: string, graceMs = 60_000): Promise<void> {
  const status = readStatus(dir);
  const pid = status?.pid;
  if (!isAlive(pid)) return;
  process.kill(pid as number, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid as number, "SIGKILL");
      break;
    }
    await sleep(100);
  }
}

/** Whether a TCP port can be bound on all addresses (the API server binds its network's gateway). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(true)));
  });
}

function running(dir: string): boolean {
  return isAlive(readStatus(dir)?.pid);
}

async function create(name: string, opts: { network: string; kubeconfig?: string; apiPort: string }): Promise<void> {
  const bad = validateClusterName(name);
  if (bad) throw new UserError(bad);
  const netBad = validateClusterName(opts.network);
  if (netBad) throw new UserError(netBad.replace("cluster name", "network name"));
  const port = Number(opts.apiPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`invalid --api-port "${opts.apiPort}": use a port number from 1 to 65535, or 0 to pick one`);
  }
  if (port > 0 && !(await portFree(port))) {
    throw new UserError(`port ${port} is in use on this machine; choose another --api-port, or 0 to pick a free one`);
  }
  const home = isthmusHome(process.env);
  const dir = clusterDir(home, name);
  if (readSpec(dir)) {
    throw new UserError(
      running(dir)
        ? `cluster "${name}" already exists and is running; use it (kubectl --context ${name}) or delete it first: isthmus cluster delete ${name}`
        : `cluster "${name}" already exists but is stopped; start it with: isthmus cluster start ${name}`,
    );
  }
  const { checkNodePrivileges } = await import("../devcluster/node/index.js");
  const missing = checkNodePrivileges();
  if (missing) throw new UserError(missing);
  writeSpec(dir, { name, network: opts.network, apiPort: port, createdAt: new Date().toISOString() });
  process.stderr.write(`Creating cluster "${name}" on network "${opts.network}" ...\n`);
  try {
    await startDaemon(home, name);
  } catch (err) {
    await stopDaemon(dir, 10_000);
    await sweepCluster(home, name);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const path = kubeconfigPath(opts.kubeconfig, process.env);
  mergeIntoKubeconfig(path, accessOf(dir, name));
  process.stdout.write(
    `Cluster "${name}" is ready (API server ${readStatus(dir)?.server}).\nContext "${name}" added to ${path}; try: kubectl --context ${name} get nodes\n`,
  );
}

async function remove(name: string, opts: { kubeconfig?: string }): Promise<void> {
  const home = isthmusHome(process.env);
  const dir = clusterDir(home, name);
  const path = kubeconfigPath(opts.kubeconfig, process.env);
  if (!readSpec(dir)) {
    removeFromKubeconfig(path, name);
    throw new UserError(`cluster "${name}" does not exist (isthmus cluster list shows the clusters there are)`);
  }
  process.stderr.write(`Deleting cluster "${name}" ...\n`);
  await stopDaemon(dir);
  await sweepCluster(home, name);
  rmSync(dir, { recursive: true, force: true });
  removeFromKubeconfig(path, name);
  process.stdout.write(`Deleted cluster "${name}".\n`);
}

function list(): void {
  const home = isthmusHome(process.env);
  const names = listClusterNames(home);
  if (names.length === 0) {
    process.stderr.write("No local clusters. Create one with: isthmus cluster create cluster1\n");
    return;
  }
  const rows = names.map((name) => {
    const dir = clusterDir(home, name);
    const spec = readSpec(dir);
    const status = readStatus(dir);
    const phase = running(dir) ? (status?.phase ?? "Unknown") : "Stopped";
    return [name, spec?.network ?? "", phase, status?.server ?? "", age(spec?.createdAt)];
  });
  process.stdout.write(table(["NAME", "NETWORK", "STATUS", "API SERVER", "AGE"], rows));
}

async function stop(name: string): Promise<void> {
  const home = isthmusHome(process.env);
  const dir = clusterDir(home, name);
  if (!readSpec(dir)) throw new UserError(`cluster "${name}" does not exist (isthmus cluster list)`);
  if (!running(dir)) {
    process.stdout.write(`Cluster "${name}" is already stopped.\n`);
    return;
  }
  await stopDaemon(dir);
  process.stdout.write(
    `Stopped cluster "${name}"; its objects are kept. Start it again with: isthmus cluster start ${name}\n`,
  );
}

async function start(name: string, opts: { kubeconfig?: string }): Promise<void> {
  const home = isthmusHome(process.env);
  const dir = clusterDir(home, name);
  if (!readSpec(dir))
    throw new UserError(`cluster "${name}" does not exist; create it with: isthmus cluster create ${name}`);
  if (running(dir)) {
    process.stdout.write(`Cluster "${name}" is already running.\n`);
    return;
  }
  const { checkNodePrivileges } = await import("../devcluster/node/index.js");
  const missing = checkNodePrivileges();
  if (missing) throw new UserError(missing);
  await startDaemon(home, name);
  mergeIntoKubeconfig(kubeconfigPath(opts.kubeconfig, process.env), accessOf(dir, name));
  process.stdout.write(`Started cluster "${name}".\n`);
}

function printKubeconfig(name: string): void {
  const home = isthmusHome(process.env);
  const dir = clusterDir(home, name);
  if (!readSpec(dir)) throw new UserError(`cluster "${name}" does not exist (isthmus cluster list)`);
  process.stdout.write(YAML.stringify(kubeconfigFor(accessOf(dir, name))));
}

/** Entry point for `isthmus cluster ...`. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("isthmus cluster")
    .description("local Kubernetes-compatible clusters (the embedded default)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const kubeconfigOpt = "--kubeconfig <file>";
  const kubeconfigHelp = "kubeconfig to update (default: first file of $KUBECONFIG, else ~/.kube/config)";
  program
    .command("create <name>")
    .description("create a cluster and add a context named after it to your kubeconfig")
    .option("--network <name>", "clusters on the same network reach each other's pods", "network1")
    .option(kubeconfigOpt, kubeconfigHelp)
    .option("--api-port <port>", "API server port (0 picks a free one)", "0")
    .action(create);
  program
    .command("delete <names...>")
    .description("stop clusters and remove their state, network and context")
    .option(kubeconfigOpt, kubeconfigHelp)
    .action(async (names: string[], opts: { kubeconfig?: string }) => {
      for (const name of names) await remove(name, opts);
    });
  program.command("list").description("list local clusters").action(list);
  program.command("stop <name>").description("stop a cluster, keeping its objects").action(stop);
  program
    .command("start <name>")
    .description("start a stopped cluster")
    .option(kubeconfigOpt, kubeconfigHelp)
    .action(start);
  program.command("kubeconfig <name>").description("print the cluster's admin kubeconfig").action(printKubeconfig);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UserError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
