/**
 * A local cluster's place on the machine's network: its allocation (from the registry) and the
 * kernel objects it implies (bridge, gateway address, ClusterIP dummy interface, guard route,
 * pod network namespaces). Every operation is idempotent, so a crashed run can be swept by
 * running the same steps again.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { linkAddresses, listLinks, listNetns, netnsPids, run, tryRun } from "./exec.js";
import {
  AllocationError,
  type ClusterRecord,
  clusterKey,
  defaultRegistryDir,
  type NetworkRecord,
  Registry,
  allocateInState,
  tagOf,
} from "./registry.js";

/** The whole project range; an unreachable route over it keeps project traffic on the machine. */
export const projectRange = "10.200.0.0/13";
export const clusterDomain = "cluster.local";

/** Everything the node, the API server and the CLI need to know about one cluster's addresses and names. */
export interface ClusterNetwork {
  readonly home: string;
  readonly clusterName: string;
  readonly networkName: string;
  /** 8 hex characters in this cluster's kernel object names (netns `isth-<tag>-<n>`). */
  readonly clusterTag: string;
  readonly networkTag: string;
  /** Bridge of the network, `isthb<networkTag>`. */
  readonly bridge: string;
  /** Host dummy interface holding ClusterIPs, `isthd<networkTag>`. */
  readonly dummy: string;
  /** The network's gateway address on the host (x.x.x.1); the API server listens here. */
  readonly gateway: string;
  /** e.g. 10.200.16.0/20 */
  readonly networkCidr: string;
  readonly prefixLength: number;
  /** e.g. 10.200.17.0/24 */
  readonly podCidr: string;
  /** e.g. 10.201.3.0/24 */
  readonly serviceCidr: string;
  /** ClusterIP of the `kubernetes` Service (.1 of the service range). */
  readonly kubernetesServiceIp: string;
  /** ClusterIP of kube-dns (.10 of the service range); the node's DNS server listens here. */
  readonly dnsServiceIp: string;
  readonly apiPort: number;
  /** Folder of the allocation registry (default /run/isthmus). */
  readonly registryDir: string;
}

function networkBase(index: number): [number, number] {
  return [200, index * 16];
}

function toClusterNetwork(n: NetworkRecord, c: ClusterRecord, registryDir: string): ClusterNetwork {
  const [b2, b3] = networkBase(n.index);
  const networkTag = tagOf(n.key);
  return {
    home: c.home,
    clusterName: c.clusterName,
    networkName: n.name,
    clusterTag: tagOf(c.key),
    networkTag,
    bridge: `isthb${networkTag}`,
    dummy: `isthd${networkTag}`,
    gateway: `10.${b2}.${b3}.1`,
    networkCidr: `10.${b2}.${b3}.0/20`,
    prefixLength: 20,
    podCidr: `10.${b2}.${b3 + c.podIndex}.0/24`,
    serviceCidr: `10.201.${c.serviceIndex}.0/24`,
    kubernetesServiceIp: `10.201.${c.serviceIndex}.1`,
    dnsServiceIp: `10.201.${c.serviceIndex}.10`,
    apiPort: c.apiPort,
    registryDir,
  };
}

export interface AllocateOptions {
  readonly home: string;
  readonly clusterName: string;
  /** Network name (`--network`), default network1. */
  readonly network?: string;
  /** Requested API port; 0/undefined allocates one from 16443-16999. */
  readonly apiPort?: number;
  /** The process that will own the cluster's kernel objects (the daemon); 0 to allocate only. */
  readonly ownerPid?: number;
  readonly registryDir?: string;
}

/**
 * Allocates the cluster's ranges and port (or returns the ones it already has). Refuses while
 * another live process owns the cluster. `previousOwnerDied` tells the caller to `sweep` first.
 */
export async function allocateCluster(
  opts: AllocateOptions,
): Promise<{ network: ClusterNetwork; previousOwnerDied: boolean }> {
  const registryDir = opts.registryDir ?? defaultRegistryDir;
  const reg = new Registry(registryDir);
  return reg.transaction((state) => {
    const r = allocateInState(state, {
      home: opts.home,
      clusterName: opts.clusterName,
      networkName: opts.network ?? "network1",
      pid: opts.ownerPid ?? 0,
      apiPort: opts.apiPort,
    });
    return { network: toClusterNetwork(r.network, r.cluster, registryDir), previousOwnerDied: r.previousOwnerDied };
  });
}

/** The cluster's allocation if it has one (no changes). */
export function lookupCluster(opts: {
  home: string;
  clusterName: string;
  registryDir?: string;
}): ClusterNetwork | undefined {
  const registryDir = opts.registryDir ?? defaultRegistryDir;
  const state = new Registry(registryDir).read();
  const c = state.clusters[clusterKey(opts.home, opts.clusterName)];
  const n = c ? state.networks[c.networkKey] : undefined;
  return c && n ? toClusterNetwork(n, c, registryDir) : undefined;
}

async function linkExists(name: string): Promise<boolean> {
  return (await tryRun("ip", ["link", "show", "dev", name])).code === 0;
}

/**
 * Creates (idempotently) the network's bridge with the gateway address, the ClusterIP dummy
 * interface and the guard route. Runs under the registry lock so two clusters of one network
 * starting together do not race.
 */
export async function ensureNetwork(net: ClusterNetwork): Promise<void> {
  await new Registry(net.registryDir).transaction(async (state) => {
    if (!Object.values(state.networks).some((n) => tagOf(n.key) === net.networkTag)) {
      throw new AllocationError(`network "${net.networkName}" is not allocated; call allocateCluster first`);
    }
    if (!(await linkExists(net.bridge))) await run("ip", ["link", "add", net.bridge, "type", "bridge"]);
    await pinBridgeAddress(net.bridge);
    await run("ip", ["addr", "replace", `${net.gateway}/${net.prefixLength}`, "dev", net.bridge]);
    await run("ip", ["link", "set", net.bridge, "up"]);
    if (!(await linkExists(net.dummy))) {
      // Kernels without the dummy module (some sandboxes) get a port-less bridge instead: it holds addresses the same way.
      const made = await tryRun("ip", ["link", "add", net.dummy, "type", "dummy"]);
      if (made.code !== 0) await run("ip", ["link", "add", net.dummy, "type", "bridge"]);
    }
    await run("ip", ["link", "set", net.dummy, "up"]);
    await run("ip", ["route", "replace", "unreachable", projectRange]);
  });
}

/**
 * Fixes the bridge's MAC address at its current value. A bridge whose address was never set
 * takes the lowest MAC of its ports and changes it when that port goes: every pod then still
 * sends to the gateway (DNS, ClusterIPs, API servers) at the old MAC, and those frames are lost
 * until the pod's ARP entry expires (seconds), e.g. whenever one pod of the network is deleted.
 */
async function pinBridgeAddress(bridge: string): Promise<void> {
  const sys = join("/sys/class/net", bridge);
  // addr_assign_type 3 (NET_ADDR_SET): set by hand, the bridge keeps it whatever its ports do.
  if (readFileSync(join(sys, "addr_assign_type"), "utf8").trim() === "3") return;
  await run("ip", ["link", "set", bridge, "address", readFileSync(join(sys, "address"), "utf8").trim()]);
}

/** Adds a ClusterIP as a /32 on the network's dummy interface (idempotent). */
export async function addServiceIp(net: ClusterNetwork, ip: string): Promise<void> {
  await run("ip", ["addr", "replace", `${ip}/32`, "dev", net.dummy]);
}

/** Removes a ClusterIP /32 (idempotent). */
export async function removeServiceIp(net: ClusterNetwork, ip: string): Promise<void> {
  await tryRun("ip", ["addr", "del", `${ip}/32`, "dev", net.dummy]);
}

/** True when `ip` lies inside `cidr` (IPv4). */
export function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const n = Number(bits);
  const a = ipToInt(ip);
  const b = ipToInt(base ?? "");
  if (a === undefined || b === undefined) return false;
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

export function ipToInt(ip: string): number | undefined {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

/** Prefix of every network namespace of this cluster. */
export function netnsPrefix(net: ClusterNetwork): string {
  return `isth-${net.clusterTag}-`;
}

/** The bridge a link is attached to, or undefined. */
function masterOf(link: string): string | undefined {
  try {
    return basename(readlinkSync(join("/sys/class/net", link, "master")));
  } catch {
    return undefined;
  }
}

/** Host-side veth name of a pod IP: `isthv` + the last two octets in hex (unique machine-wide). */
export function vethNames(ip: string): { host: string; peer: string } {
  const [, , c, d] = ip.split(".").map(Number);
  const hex = ((c ?? 0) * 256 + (d ?? 0)).toString(16).padStart(4, "0");
  return { host: `isthv${hex}`, peer: `isthp${hex}` };
}

async function deleteNetns(ns: string): Promise<void> {
  // Processes keep a namespace alive after its name is gone; kill them first.
  for (const pid of await netnsPids(ns)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await tryRun("ip", ["netns", "del", ns]);
  rmSync(join("/etc/netns", ns), { recursive: true, force: true });
}

/**
 * Removes this cluster's kernel objects (pod namespaces and their processes, stray veths,
 * ClusterIP addresses), keeping its allocations. Touches only objects named or addressed
 * inside this cluster's own ranges, so other runs' objects are never affected.
 */
export async function sweep(net: ClusterNetwork): Promise<void> {
  const prefix = netnsPrefix(net);
  for (const ns of await listNetns()) if (ns.startsWith(prefix)) await deleteNetns(ns);
  // Resolver files of namespaces that are already gone.
  if (existsSync("/etc/netns")) {
    for (const dir of readdirSync("/etc/netns")) {
      if (dir.startsWith(prefix)) rmSync(join("/etc/netns", dir), { recursive: true, force: true });
    }
  }
  for (const link of await listLinks()) {
    const m = /^isth[vp]([0-9a-f]{4})$/.exec(link);
    if (!m?.[1]) continue;
    const v = Number.parseInt(m[1], 16);
    const ip = `10.200.${v >> 8}.${v & 255}`;
    // A link on another network's bridge is another run's pod with a colliding name: never ours.
    const master = masterOf(link);
    if (inCidr(ip, net.podCidr) && (master === undefined || master === net.bridge))
      await tryRun("ip", ["link", "del", link]);
  }
  for (const ip of await linkAddresses(net.dummy)) if (inCidr(ip, net.serviceCidr)) await removeServiceIp(net, ip);
}

/**
 * Sweeps the cluster and marks it as owned by no process (daemon shutdown); allocations stay
 * so that a restart gets the same addresses and port.
 */
export async function stopCluster(net: ClusterNetwork): Promise<void> {
  await sweep(net);
  await new Registry(net.registryDir).transaction((state) => {
    const key = clusterKey(net.home, net.clusterName);
    const c = state.clusters[key];
    if (c) state.clusters[key] = { ...c, pid: 0 };
  });
}

/**
 * Removes everything the cluster made and releases its allocations; the network's bridge and
 * dummy interface go with its last cluster, the guard route with the machine's last network.
 * Safe to call repeatedly and when nothing is allocated.
 */
export async function teardownCluster(opts: {
  home: string;
  clusterName: string;
  registryDir?: string;
}): Promise<void> {
  const net = lookupCluster(opts);
  if (net) await sweep(net);
  await new Registry(opts.registryDir ?? defaultRegistryDir).transaction(async (state) => {
    const key = clusterKey(opts.home, opts.clusterName);
    const c = state.clusters[key];
    if (!c) return;
    delete state.clusters[key];
    const n = state.networks[c.networkKey];
    if (n && !Object.values(state.clusters).some((o) => o.networkKey === c.networkKey)) {
      const tag = tagOf(n.key);
      await tryRun("ip", ["link", "del", `isthb${tag}`]);
      await tryRun("ip", ["link", "del", `isthd${tag}`]);
      delete state.networks[c.networkKey];
    }
    // The guard route is machine-wide: only the machine's own registry may decide that nothing needs it.
    const machineRegistry = (opts.registryDir ?? defaultRegistryDir) === defaultRegistryDir;
    if (machineRegistry && Object.keys(state.networks).length === 0) {
      await tryRun("ip", ["route", "del", "unreachable", projectRange]);
    }
  });
}

/** A pod's network as set up by PodNetworks.setup. */
export interface PodNetwork {
  readonly netns: string;
  readonly ip: string;
  readonly hostVeth: string;
}

/** Owns pod addresses of one cluster's pod /24 and sets up / tears down pod namespaces. */
export class PodNetworks {
  readonly net: ClusterNetwork;
  readonly #inUse = new Set<number>();
  #next = 2;
  /**
   * Namespace and link changes take the kernel's rtnl lock and wait for RCU grace periods, so
   * running them concurrently only makes every pod late; one at a time, the first pods are up first.
   */
  #queue: Promise<unknown> = Promise.resolve();

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  constructor(net: ClusterNetwork) {
    this.net = net;
  }

  #allocate(): string {
    const base = this.net.podCidr.split("/")[0]?.split(".").slice(0, 3).join(".");
    for (let i = 0; i < 253; i++) {
      const n = ((this.#next - 2 + i) % 253) + 2;
      if (this.#inUse.has(n)) continue;
      this.#inUse.add(n);
      // Round robin: a just-freed address is not handed out again at once (stale ARP entries).
      this.#next = n + 1 > 254 ? 2 : n + 1;
      return `${base}.${n}`;
    }
    throw new AllocationError(`pod range ${this.net.podCidr} of cluster "${this.net.clusterName}" is full (253 pods)`);
  }

  /**
   * Creates the pod's namespace (`isth-<clusterTag>-<n>`), veth pair on the bridge, address,
   * default route via the gateway, and its resolv.conf/hosts under /etc/netns/<ns>/.
   */
  setup(pod: { namespace: string; name: string; hostname?: string; subdomain?: string }): Promise<PodNetwork> {
    return this.#serial(() => this.#setup(pod));
  }

  async #setup(pod: { namespace: string; name: string; hostname?: string }): Promise<PodNetwork> {
    const ip = this.#allocate();
    const octet = Number(ip.split(".")[3]);
    const netns = `${netnsPrefix(this.net)}${octet}`;
    const { host, peer } = vethNames(ip);
    try {
      // Leftovers of a crashed run with the same address (normally swept at start-up).
      if (existsSync(join("/run/netns", netns))) await deleteNetns(netns);
      if (existsSync(join("/sys/class/net", host))) {
        const master = masterOf(host);
        if (master !== undefined && master !== this.net.bridge) {
          // Another network's pod holds this name: deleting it would cut that pod off.
          throw new AllocationError(
            `pod address ${ip} of cluster "${this.net.clusterName}" collides with a pod on bridge ${master} (link ${host}); the machine's allocation registry (/run/isthmus) is out of step with its links: delete the other cluster or run \`isthmus cluster delete\` for clusters that no longer exist`,
          );
        }
        await tryRun("ip", ["link", "del", host]);
      }
      const etc = join("/etc/netns", netns);
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, "resolv.conf"), resolvConf(this.net, pod.namespace));
      writeFileSync(join(etc, "hosts"), hostsFile(ip, pod.hostname ?? pod.name));
      await run(
        "ip",
        ["-b", "-"],
        [
          `netns add ${netns}`,
          `link add ${host} type veth peer name ${peer} netns ${netns}`,
          `link set ${host} master ${this.net.bridge} up`,
        ].join("\n"),
      );
      await run(
        "ip",
        ["-n", netns, "-b", "-"],
        [
          `link set ${peer} name eth0`,
          `addr add ${ip}/${this.net.prefixLength} dev eth0`,
          "link set eth0 up",
          "link set lo up",
          `route add default via ${this.net.gateway}`,
        ].join("\n"),
      );
      return { netns, ip, hostVeth: host };
    } catch (err) {
      await this.#teardown({ netns, ip, hostVeth: host });
      throw err;
    }
  }

  /** Kills what still runs in the pod's namespace, deletes it and frees the address (idempotent). */
  teardown(pod: PodNetwork): Promise<void> {
    return this.#serial(() => this.#teardown(pod));
  }

  async #teardown(pod: PodNetwork): Promise<void> {
    await deleteNetns(pod.netns);
    // Deleting the namespace deletes the pair; only a half-made pair is left to remove.
    if (existsSync(join("/sys/class/net", pod.hostVeth))) await tryRun("ip", ["link", "del", pod.hostVeth]);
    this.#inUse.delete(Number(pod.ip.split(".")[3]));
  }

  /** True when the namespace exists (for tests and sweeps). */
  static exists(netns: string): boolean {
    return existsSync(join("/run/netns", netns));
  }
}

/** The resolv.conf of a pod in `namespace`: the cluster's DNS, Kubernetes' search list. */
export function resolvConf(net: ClusterNetwork, namespace: string): string {
  return [
    `nameserver ${net.dnsServiceIp}`,
    `search ${namespace}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}`,
    "options ndots:5",
    "",
  ].join("\n");
}

function hostsFile(ip: string, hostname: string): string {
  return ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", `${ip}\t${hostname}`, ""].join("\n");
}
