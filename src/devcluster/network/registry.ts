/**
 * The machine-wide allocation registry: which /20 each network has, which pod /24 and service
 * /24 each local cluster has, and which API server port. Several ISTHMUS_HOMEs (parallel test
 * runs) share one machine, so the registry is one JSON file under /run/isthmus guarded by an
 * exclusive flock(2) that this process holds on its own descriptor of `registry.lock` for the
 * duration of each transaction (native/flock.c; Node exposes no flock).
 */
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { IsthmusError } from "../../base/index.js";

/** One network (a Linux bridge) as recorded in the registry. */
export interface NetworkRecord {
  readonly key: string;
  readonly home: string;
  readonly name: string;
  /** 0..15: the /20 is 10.200.(index*16).0/20. */
  readonly index: number;
}

/** One local cluster's allocations. */
export interface ClusterRecord {
  readonly key: string;
  readonly home: string;
  readonly clusterName: string;
  readonly networkKey: string;
  /** 1..15: the pod /24 is the index-th /24 of the network's /20 (the 0th holds the gateway). */
  readonly podIndex: number;
  /** 0..255: the service /24 is 10.201.index.0/24. */
  readonly serviceIndex: number;
  readonly apiPort: number;
  /** The daemon process that owns the cluster's kernel objects now; 0 when none. */
  readonly pid: number;
}

export interface RegistryState {
  networks: Record<string, NetworkRecord>;
  clusters: Record<string, ClusterRecord>;
}

/** Thrown when the machine's address space or a registry invariant does not allow an allocation. */
export class AllocationError extends IsthmusError {
  constructor(message: string) {
    super("ISTHMUS_ERR_ALLOCATION", message);
  }
}

/** Default registry folder; tests may pass their own to `Registry`. */
export const defaultRegistryDir = "/run/isthmus";

export const networkKey = (home: string, name: string): string => `${home}\u0000${name}`;
export const clusterKey = (home: string, clusterName: string): string => `${home}\u0000${clusterName}`;

/** 8 hex characters identifying a key in kernel object names. */
export function tagOf(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

export const maxNetworks = 16;
export const maxPodRangesPerNetwork = 15;
export const maxServiceRanges = 256;
export const firstApiPort = 16443;
export const lastApiPort = 16999;

/** True when a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The registry file. `transaction(fn)` runs `fn` on the current state with the lock held and
 * writes back what `fn` leaves (atomically, by rename). Kernel changes that must not race
 * between processes (bridge creation, the guard route) run inside the same transaction.
 */
export class Registry {
  readonly dir: string;
  constructor(dir = defaultRegistryDir) {
    this.dir = dir;
  }

  get #file(): string {
    return join(this.dir, "registry.json");
  }

  async transaction<T>(fn: (state: RegistryState) => Promise<T> | T): Promise<T> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const unlock = await this.#lock();
    try {
      const state = this.read();
      const result = await fn(state);
      const tmp = `${this.#file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
      renameSync(tmp, this.#file);
      return result;
    } finally {
      unlock();
    }
  }

  /** The state as last written, without the lock (for inspection only). */
  read(): RegistryState {
    try {
      const parsed = JSON.parse(readFileSync(this.#file, "utf8")) as Partial<RegistryState>;
      return { networks: parsed.networks ?? {}, clusters: parsed.clusters ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { networks: {}, clusters: {} };
      throw err;
    }
  }

  /**
   * Takes flock(2) on our own descriptor of the lock file, polling with LOCK_NB so the event loop
   * keeps running while another process holds it. The returned release is synchronous (unlock and
   * close): a holder that blocks its event loop right after a transaction (execFileSync, a sync
   * wait) has already let go, and a holder that dies lets go with its descriptors.
   */
  async #lock(): Promise<() => void> {
    const lockFile = join(this.dir, "registry.lock");
    const fd = openSync(lockFile, "a", 0o644);
    try {
      for (let delayMs = 2; !flockAddon().tryLock(fd); delayMs = Math.min(delayMs * 2, 50)) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      try {
        flockAddon().unlock(fd);
      } finally {
        closeSync(fd);
      }
    };
  }
}

interface FlockAddon {
  /** LOCK_EX|LOCK_NB: true when taken, false when another open file description holds it. */
  tryLock(fd: number): boolean;
  unlock(fd: number): boolean;
}

let addon: FlockAddon | undefined;
function flockAddon(): FlockAddon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    try {
      addon = require("../../../build/Release/flock.node") as FlockAddon;
    } catch (err) {
      throw new Error(
        `the native flock addon for the allocation registry is not built (${err instanceof Error ? err.message : String(err)}); run \`npm ci\` (or \`npx node-gyp rebuild\`) in the checkout`,
      );
    }
  }
  return addon;
}

/** Finds the lowest free index in [from, to] not in `used`, or undefined. */
export function lowestFree(used: Iterable<number>, from: number, to: number): number | undefined {
  const set = new Set(used);
  for (let i = from; i <= to; i++) if (!set.has(i)) return i;
  return undefined;
}

/**
 * Allocates (or finds) the network and cluster records for `home`/`clusterName` on `networkName`.
 * A cluster already owned by another live process is refused; one whose owner died is taken over.
 */
export function allocateInState(
  state: RegistryState,
  opts: { home: string; clusterName: string; networkName: string; pid: number; apiPort?: number },
): { network: NetworkRecord; cluster: ClusterRecord; previousOwnerDied: boolean } {
  const nKey = networkKey(opts.home, opts.networkName);
  const cKey = clusterKey(opts.home, opts.clusterName);
  const existing = state.clusters[cKey];
  if (existing && existing.networkKey !== nKey) {
    const other = state.networks[existing.networkKey]?.name ?? "another network";
    throw new AllocationError(
      `cluster "${opts.clusterName}" is already on network "${other}", not "${opts.networkName}"; delete it first to move it`,
    );
  }
  if (existing && existing.pid !== 0 && existing.pid !== opts.pid && pidAlive(existing.pid)) {
    throw new AllocationError(
      `cluster "${opts.clusterName}" of ${opts.home} is already run by process ${existing.pid}; stop it first`,
    );
  }
  let network = state.networks[nKey];
  if (!network) {
    const index = lowestFree(
      Object.values(state.networks).map((n) => n.index),
      0,
      maxNetworks - 1,
    );
    if (index === undefined) {
      throw new AllocationError(
        `all ${maxNetworks} networks of 10.200.0.0/16 are in use on this machine; delete unused local clusters`,
      );
    }
    network = { key: nKey, home: opts.home, name: opts.networkName, index };
    state.networks[nKey] = network;
  }
  if (existing) {
    const cluster = { ...existing, pid: opts.pid };
    state.clusters[cKey] = cluster;
    return { network, cluster, previousOwnerDied: existing.pid !== 0 && existing.pid !== opts.pid };
  }
  const clusters = Object.values(state.clusters);
  const podIndex = lowestFree(
    clusters.filter((c) => c.networkKey === nKey).map((c) => c.podIndex),
    1,
    maxPodRangesPerNetwork,
  );
  if (podIndex === undefined) {
    throw new AllocationError(
      `network "${opts.networkName}" already holds ${maxPodRangesPerNetwork} clusters; use another --network`,
    );
  }
  const serviceIndex = lowestFree(
    clusters.map((c) => c.serviceIndex),
    0,
    maxServiceRanges - 1,
  );
  if (serviceIndex === undefined) throw new AllocationError("all service ranges of 10.201.0.0/16 are in use");
  let apiPort = opts.apiPort ?? 0;
  const holder = apiPort === 0 ? undefined : clusters.find((c) => c.apiPort === apiPort && c.key !== cKey);
  if (holder !== undefined) {
    throw new AllocationError(
      `API server port ${apiPort} is already used by cluster "${holder.clusterName}"; choose another --api-port, or 0 to pick a free one`,
    );
  }
  if (apiPort === 0) {
    const port = lowestFree(
      clusters.map((c) => c.apiPort),
      firstApiPort,
      lastApiPort,
    );
    if (port === undefined) throw new AllocationError("no free API server port left");
    apiPort = port;
  }
  const cluster: ClusterRecord = {
    key: cKey,
    home: opts.home,
    clusterName: opts.clusterName,
    networkKey: nKey,
    podIndex,
    serviceIndex,
    apiPort,
    pid: opts.pid,
  };
  state.clusters[cKey] = cluster;
  return { network, cluster, previousOwnerDied: false };
}
