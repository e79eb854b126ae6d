/**
 * Where local clusters keep their state: `$ISTHMUS_HOME/clusters/<name>/` (default ~/.isthmus).
 * The daemon writes `status.json` as it starts and stops; the CLI reads it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The folder holding every local cluster of this user. */
export function isthmusHome(env: NodeJS.ProcessEnv): string {
  return env.ISTHMUS_HOME && env.ISTHMUS_HOME !== "" ? env.ISTHMUS_HOME : join(env.HOME ?? homedir(), ".isthmus");
}

export function clusterDir(home: string, name: string): string {
  return join(home, "clusters", name);
}

/** What `cluster create` decided once; kept across stop/start. */
export interface ClusterSpec {
  readonly name: string;
  readonly network: string;
  /** Requested API server port; 0 = allocated at first start and then kept in status. */
  readonly apiPort: number;
  readonly createdAt: string;
}

export type ClusterPhase = "Starting" | "Ready" | "Stopping" | "Stopped" | "Failed";

/** Written by the daemon; `server` is the https URL kubeconfigs name. */
export interface ClusterStatus {
  readonly phase: ClusterPhase;
  readonly pid: number;
  readonly server?: string;
  readonly message?: string;
  readonly updatedAt: string;
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    // Missing or half-written by a crashed process: treated as absent, which callers report.
    return undefined;
  }
}

export function writeSpec(dir: string, spec: ClusterSpec): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeJsonAtomic(join(dir, "cluster.json"), spec);
}

export function readSpec(dir: string): ClusterSpec | undefined {
  return readJson<ClusterSpec>(join(dir, "cluster.json"));
}

export function writeStatus(dir: string, status: Omit<ClusterStatus, "updatedAt">): void {
  writeJsonAtomic(join(dir, "status.json"), { ...status, updatedAt: new Date().toISOString() });
}

export function readStatus(dir: string): ClusterStatus | undefined {
  return readJson<ClusterStatus>(join(dir, "status.json"));
}

/** Names of every cluster with a state folder, sorted. */
export function listClusterNames(home: string): string[] {
  const root = join(home, "clusters");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => existsSync(join(root, n, "cluster.json")))
    .sort();
}

/** True when a process with this pid exists (signal 0 probes without signalling). */
export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A DNS-1123 label of at most 32 characters (kernel object names are derived from it). */
export function validateClusterName(name: string): string | undefined {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 32) {
    return `invalid cluster name "${name}": use lower-case letters, digits and "-", starting and ending with a letter or digit, at most 32 characters (e.g. cluster1)`;
  }
  return undefined;
}
