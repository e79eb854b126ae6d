/**
 * ClusterIP allocation from the cluster's service range (an IPv4 CIDR such as 10.201.3.0/24).
 * The network and broadcast addresses are never handed out; `.1` is kept for the `kubernetes`
 * Service and `.10` for kube-dns, which get them only by asking for them explicitly.
 * The allocator holds no state of its own on disk: it is rebuilt from the stored Services.
 */

/** Parses "a.b.c.d" into a 32-bit number, or undefined. */
export function parseIPv4(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Outcome of asking for an address. */
export type Allocation = { ok: true; ip: string } | { ok: false; reason: string };

/** Hands out and takes back ClusterIPs of one service CIDR. */
export class ClusterIpAllocator {
  readonly cidr: string;
  readonly #base: number;
  readonly #size: number;
  readonly #used = new Set<number>();
  /** Offsets never handed out by `allocate` (only by `claim`). */
  readonly #reserved: Set<number>;
  #next = 0;

  constructor(cidr: string) {
    const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
    const base = m ? parseIPv4(m[1] ?? "") : undefined;
    const bits = m ? Number(m[2]) : Number.NaN;
    if (base === undefined || !(bits >= 8 && bits <= 30)) {
      throw new RangeError(`service CIDR ${JSON.stringify(cidr)} is not an IPv4 CIDR between /8 and /30`);
    }
    this.cidr = cidr;
    this.#size = 2 ** (32 - bits);
    this.#base = (base & ~(this.#size - 1)) >>> 0;
    this.#reserved = new Set([0, 1, 10, this.#size - 1]);
  }

  /** The address at `offset` in the range (1 → the `kubernetes` Service, 10 → kube-dns). */
  at(offset: number): string {
    return formatIPv4(this.#base + offset);
  }

  contains(ip: string): boolean {
    const n = parseIPv4(ip);
    return n !== undefined && n > this.#base && n < this.#base + this.#size - 1;
  }

  /** Takes a specific address (an explicit spec.clusterIP, or one found in storage). */
  claim(ip: string): Allocation {
    const n = parseIPv4(ip);
    if (n === undefined || !this.contains(ip)) {
      return {
        ok: false,
        reason: `the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.cidr}`,
      };
    }
    if (this.#used.has(n - this.#base)) return { ok: false, reason: `provided IP is already allocated` };
    this.#used.add(n - this.#base);
    return { ok: true, ip };
  }

  /** Picks a free address, going round the range so a freed address is not reused at once. */
  allocate(): Allocation {
    for (let i = 0; i < this.#size; i++) {
      const off = (this.#next + i) % this.#size;
      if (this.#reserved.has(off) || this.#used.has(off)) continue;
      this.#used.add(off);
      this.#next = (off + 1) % this.#size;
      return { ok: true, ip: this.at(off) };
    }
    return { ok: false, reason: `range is full: every address of ${this.cidr} is allocated` };
  }

  release(ip: string): void {
    const n = parseIPv4(ip);
    if (n !== undefined) this.#used.delete(n - this.#base);
  }

  isAllocated(ip: string): boolean {
    const n = parseIPv4(ip);
    return n !== undefined && this.#used.has(n - this.#base);
  }
}

/** Hands out node ports (30000-32767 by default) to NodePort and LoadBalancer Services. */
export class NodePortAllocator {
  readonly #min: number;
  readonly #max: number;
  readonly #used = new Set<number>();
  #next: number;

  constructor(min = 30000, max = 32767) {
    this.#min = min;
    this.#max = max;
    this.#next = min;
  }

  /** Takes a specific port (an explicit spec.ports[].nodePort, or one found in storage). */
  claim(port: number): Allocation {
    if (!Number.isInteger(port) || port < this.#min || port > this.#max) {
      return {
        ok: false,
        reason: `provided port is not in the valid range. The range of valid ports is ${this.#min}-${this.#max}`,
      };
    }
    if (this.#used.has(port)) return { ok: false, reason: "provided port is already allocated" };
    this.#used.add(port);
    return { ok: true, ip: String(port) };
  }

  allocate(): number | undefined {
    const size = this.#max - this.#min + 1;
    for (let i = 0; i < size; i++) {
      const p = this.#min + ((this.#next - this.#min + i) % size);
      if (this.#used.has(p)) continue;
      this.#used.add(p);
      this.#next = p + 1 > this.#max ? this.#min : p + 1;
      return p;
    }
    return undefined;
  }

  release(port: number): void {
    this.#used.delete(port);
  }
}
