/**
 * What kube-proxy and kube-dns do, in user space on the host: a table of Services and their
 * ready endpoints (from EndpointSlices), a TCP proxy listening on every ClusterIP:port that
 * forwards each connection to a ready endpoint (round robin), and a DNS server on the
 * cluster's kube-dns ClusterIP answering for `*.svc.cluster.local` and nothing else.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket } from "node:net";
import { errorMessage, type Logger, silentLogger } from "../../base/index.js";
import type { ApiClient, KubeObject } from "../api/types.js";
import { Resources } from "../api/types.js";
import { Informer } from "../controllers/informer.js";
import { addServiceIp, type ClusterNetwork, clusterDomain, inCidr, removeServiceIp } from "./cluster-network.js";
import { DnsFormatError, decodeQuery, encodeResponse, Rcode, RecordType, type Answer } from "./dns-codec.js";

interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
}

/** A Service as the proxy and DNS see it. */
export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  /** "None" for headless Services; "" when none was assigned. */
  readonly clusterIP: string;
  readonly ports: readonly ServicePort[];
}

export interface EndpointAddress {
  readonly ip: string;
  readonly port: number;
}

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
}
interface SlicePort {
  name?: string;
  port?: number;
  protocol?: string;
}

function serviceOf(obj: KubeObject): ServiceInfo {
  const spec = (obj.spec ?? {}) as {
    clusterIP?: string;
    ports?: { name?: string; port?: number; protocol?: string }[];
  };
  return {
    namespace: obj.metadata.namespace ?? "default",
    name: obj.metadata.name ?? "",
    clusterIP: spec.clusterIP ?? "",
    ports: (spec.ports ?? []).map((p) => ({ name: p.name ?? "", port: p.port ?? 0, protocol: p.protocol ?? "TCP" })),
  };
}

/** The result of a DNS name lookup in the cluster. */
export type Lookup = { readonly found: true; readonly addresses: readonly string[] } | { readonly found: false };

/**
 * Services and EndpointSlices of one cluster, kept by two informers. Listeners hear about every
 * change (they recompute what they need; the table is small).
 */
export class ServiceTable {
  readonly services: Informer;
  readonly slices: Informer;
  readonly #listeners: (() => void)[] = [];

  constructor(client: ApiClient, log: Logger = silentLogger) {
    this.services = new Informer({ client, ref: Resources.services, log });
    this.slices = new Informer({ client, ref: Resources.endpointslices, log });
    const changed = { add: () => this.#changed(), update: () => this.#changed(), delete: () => this.#changed() };
    this.services.addHandler(changed);
    this.slices.addHandler(changed);
  }

  onChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  #changed(): void {
    for (const fn of this.#listeners) fn();
  }

  /** Runs both informers until `signal` aborts; resolves when both synced. */
  async start(signal: AbortSignal): Promise<void> {
    void this.services.run(signal);
    void this.slices.run(signal);
    await Promise.all([this.services.waitForSync(signal), this.slices.waitForSync(signal)]);
  }

  list(): ServiceInfo[] {
    return this.services.list().map(serviceOf);
  }

  get(namespace: string, name: string): ServiceInfo | undefined {
    const obj = this.services.get(namespace, name);
    return obj ? serviceOf(obj) : undefined;
  }

  /** Ready endpoints of one Service port, matched to EndpointSlice ports by name. */
  endpoints(svc: ServiceInfo, portName: string): EndpointAddress[] {
    const out: EndpointAddress[] = [];
    for (const slice of this.slices.list(svc.namespace)) {
      if (slice.metadata.labels?.["kubernetes.io/service-name"] !== svc.name) continue;
      if ((slice.addressType as string | undefined) !== "IPv4") continue;
      const port = ((slice.ports ?? []) as SlicePort[]).find((p) => (p.name ?? "") === portName);
      if (port?.port === undefined) continue;
      for (const ep of (slice.endpoints ?? []) as SliceEndpoint[]) {
        if (ep.conditions?.ready === false) continue;
        for (const ip of ep.addresses ?? []) out.push({ ip, port: port.port });
      }
    }
    return out;
  }

  /** Resolves `<svc>.<ns>.svc.cluster.local` and `<a-b-c-d>.<ns>.pod.cluster.local`. */
  lookup(name: string): Lookup {
    const suffix = `.${clusterDomain}`;
    if (!name.endsWith(suffix)) return { found: false };
    const labels = name.slice(0, -suffix.length).split(".");
    if (labels.length === 3 && labels[2] === "svc") {
      const svc = this.get(labels[1] ?? "", labels[0] ?? "");
      if (!svc) return { found: false };
      if (svc.clusterIP === "None") {
        const ips = new Set<string>();
        for (const p of svc.ports.length > 0 ? svc.ports : [{ name: "" }]) {
          for (const e of this.endpoints(svc, p.name)) ips.add(e.ip);
        }
        return { found: true, addresses: [...ips].sort() };
      }
      return { found: true, addresses: svc.clusterIP ? [svc.clusterIP] : [] };
    }
    if (labels.length === 3 && labels[2] === "pod") {
      const ip = (labels[0] ?? "").split("-").join(".");
      return /^\d+\.\d+\.\d+\.\d+$/.test(ip) ? { found: true, addresses: [ip] } : { found: false };
    }
    return { found: false };
  }
}

/**
 * The userspace service proxy: one TCP listener per ClusterIP:port, each connection forwarded
 * to the next ready endpoint. Listeners follow the ServiceTable; ClusterIPs outside the
 * cluster's service range are ignored (they are not ours to add to the host).
 */
export class ServiceProxy {
  readonly #net: ClusterNetwork;
  readonly #table: ServiceTable;
  readonly #log: Logger;
  /** `ip:port` → listener */
  readonly #listeners = new Map<string, { server: Server; ns: string; name: string; portName: string }>();
  readonly #ips = new Set<string>();
  readonly #rr = new Map<string, number>();
  readonly #conns = new Set<Socket>();
  #syncing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: { net: ClusterNetwork; table: ServiceTable; log?: Logger }) {
    this.#net = opts.net;
    this.#table = opts.table;
    this.#log = (opts.log ?? silentLogger).child("service-proxy");
  }

  /** Starts following the table (call after the table started). */
  start(): Promise<void> {
    this.#table.onChange(() => this.#schedule());
    return this.#schedule();
  }

  #schedule(): Promise<void> {
    this.#syncing = this.#syncing
      .then(() => this.#sync())
      .catch((err) => this.#log.error("sync failed", { error: err }));
    return this.#syncing;
  }

  /** Resolves when every change seen so far is applied (listeners bound). */
  settled(): Promise<void> {
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    const want = new Map<string, { ip: string; port: number; ns: string; name: string; portName: string }>();
    for (const svc of this.#table.list()) {
      if (!svc.clusterIP || svc.clusterIP === "None" || !inCidr(svc.clusterIP, this.#net.serviceCidr)) continue;
      for (const p of svc.ports) {
        if (p.protocol !== "TCP") continue;
        want.set(`${svc.clusterIP}:${p.port}`, {
          ip: svc.clusterIP,
          port: p.port,
          ns: svc.namespace,
          name: svc.name,
          portName: p.name,
        });
      }
    }
    for (const [key, l] of this.#listeners) {
      const w = want.get(key);
      if (w && w.ns === l.ns && w.name === l.name && w.portName === l.portName) continue;
      this.#listeners.delete(key);
      await new Promise<void>((resolve) => l.server.close(() => resolve()));
    }
    const ips = new Set([...want.values()].map((w) => w.ip));
    for (const ip of ips) {
      if (this.#ips.has(ip)) continue;
      await addServiceIp(this.#net, ip);
      this.#ips.add(ip);
    }
    for (const [key, w] of want) {
      if (this.#listeners.has(key)) continue;
      const server = createServer((sock) => this.#forward(sock, w.ns, w.name, w.portName, key));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(w.port, w.ip, () => resolve());
        });
        server.on("error", (err) => this.#log.warn("listener error", { address: key, error: err }));
        this.#listeners.set(key, { server, ns: w.ns, name: w.name, portName: w.portName });
      } catch (err) {
        this.#log.warn("cannot listen on a ClusterIP port", { address: key, error: errorMessage(err) });
      }
    }
    // The DNS address stays: the DNS server owns it.
    for (const ip of [...this.#ips]) {
      if (ips.has(ip) || ip === this.#net.dnsServiceIp) continue;
      await removeServiceIp(this.#net, ip);
      this.#ips.delete(ip);
    }
  }

  #forward(client: Socket, ns: string, name: string, portName: string, key: string): void {
    this.#conns.add(client);
    client.once("close", () => this.#conns.delete(client));
    client.on("error", () => {});
    const svc = this.#table.get(ns, name);
    const eps = svc ? this.#table.endpoints(svc, portName) : [];
    if (eps.length === 0) {
      // kube-proxy rejects such connections; a reset tells the client at once.
      client.resetAndDestroy();
      return;
    }
    const n = this.#rr.get(key) ?? 0;
    this.#rr.set(key, n + 1);
    const ep = eps[n % eps.length];
    if (!ep) return;
    const upstream = connect({ host: ep.ip, port: ep.port });
    this.#conns.add(upstream);
    upstream.once("close", () => this.#conns.delete(upstream));
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    upstream.on("error", () => client.resetAndDestroy());
    client.on("error", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Closes every listener and connection and removes the ClusterIPs it added. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#syncing;
    for (const l of this.#listeners.values()) l.server.close();
    this.#listeners.clear();
    for (const c of this.#conns) c.destroy();
    for (const ip of this.#ips) if (ip !== this.#net.dnsServiceIp) await removeServiceIp(this.#net, ip);
    this.#ips.clear();
  }
}

/** Answers one decoded query from the table. Pure apart from reading the table. */
export function answerQuery(table: { lookup(name: string): Lookup }, buf: Buffer): Buffer | undefined {
  let q: ReturnType<typeof decodeQuery>;
  try {
    q = decodeQuery(buf);
  } catch (err) {
    if (err instanceof DnsFormatError && buf.length >= 2) {
      return encodeResponse({
        id: buf.readUInt16BE(0),
        rcode: Rcode.FORMERR,
        recursionDesired: false,
        questions: [],
        answers: [],
      });
    }
    return undefined;
  }
  const base = { id: q.id, recursionDesired: q.recursionDesired, questions: q.questions };
  if (q.opcode !== 0 || q.questions.length !== 1) return encodeResponse({ ...base, rcode: Rcode.NOTIMP, answers: [] });
  const question = q.questions[0];
  if (!question) return undefined;
  const r = table.lookup(question.name);
  if (!r.found) return encodeResponse({ ...base, rcode: Rcode.NXDOMAIN, answers: [] });
  const answers: Answer[] =
    question.type === RecordType.A
      ? r.addresses.map((address) => ({ name: question.name, type: RecordType.A, ttl: 5, address }))
      : [];
  return encodeResponse({ ...base, rcode: Rcode.NOERROR, answers });
}

/** The cluster's DNS server on the kube-dns ClusterIP, port 53, UDP and TCP. */
export class DnsServer {
  readonly #net: ClusterNetwork;
  readonly #table: { lookup(name: string): Lookup };
  readonly #log: Logger;
  readonly #port: number;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  readonly #conns = new Set<Socket>();

  constructor(opts: { net: ClusterNetwork; table: { lookup(name: string): Lookup }; log?: Logger; port?: number }) {
    this.#net = opts.net;
    this.#table = opts.table;
    this.#log = (opts.log ?? silentLogger).child("dns");
    this.#port = opts.port ?? 53;
  }

  /** The address it listens on. */
  get address(): string {
    return this.#net.dnsServiceIp;
  }

  async start(): Promise<void> {
    const ip = this.#net.dnsServiceIp;
    await addServiceIp(this.#net, ip);
    const udp = createSocket("udp4");
    this.#udp = udp;
    udp.on("message", (msg, rinfo) => {
      const out = answerQuery(this.#table, msg);
      // A reply that cannot be sent is a lookup that times out in the pod: say which one.
      if (out)
        udp.send(out, rinfo.port, rinfo.address, (err) => {
          if (err) this.#log.warn("cannot send a DNS reply", { to: `${rinfo.address}:${rinfo.port}`, error: err });
        });
    });
    udp.on("error", (err) => this.#log.warn("udp error", { error: err }));
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(this.#port, ip, () => resolve());
    });
    const tcp = createServer((sock) => this.#serveTcp(sock));
    this.#tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(this.#port, ip, () => resolve());
    });
  }

  #serveTcp(sock: Socket): void {
    this.#conns.add(sock);
    sock.once("close", () => this.#conns.delete(sock));
    sock.on("error", () => {});
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const out = answerQuery(this.#table, buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (!out) continue;
        const lenBuf = Buffer.alloc(2);
        lenBuf.writeUInt16BE(out.length);
        sock.write(Buffer.concat([lenBuf, out]));
      }
    });
  }

  async close(): Promise<void> {
    this.#udp?.close();
    for (const c of this.#conns) c.destroy();
    await new Promise<void>((resolve) => (this.#tcp ? this.#tcp.close(() => resolve()) : resolve()));
    await removeServiceIp(this.#net, this.#net.dnsServiceIp);
  }
}

/**
 * Starts the service table, proxy and DNS server of one cluster; `close()` stops them and
 * removes their ClusterIPs. The network must be ensured first.
 */
export async function startServiceNetworking(opts: {
  client: ApiClient;
  net: ClusterNetwork;
  log?: Logger;
}): Promise<{ table: ServiceTable; proxy: ServiceProxy; dns: DnsServer; close(): Promise<void> }> {
  const ac = new AbortController();
  const table = new ServiceTable(opts.client, opts.log);
  const dns = new DnsServer({ net: opts.net, table, log: opts.log });
  const proxy = new ServiceProxy({ net: opts.net, table, log: opts.log });
  await dns.start();
  await table.start(ac.signal);
  await proxy.start();
  return {
    table,
    proxy,
    dns,
    async close() {
      ac.abort();
      await proxy.close();
      await dns.close();
    },
  };
}
