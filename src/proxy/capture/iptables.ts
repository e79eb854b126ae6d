/**
 * Traffic capture as Istio's istio-iptables sets it up in a pod's network namespace
 * (REDIRECT mode): outbound TCP to the sidecar's outbound port except the proxy's own
 * traffic (by uid/gid), inbound TCP to the inbound port except excluded ports.
 * `buildCaptureRules` is pure; `applyCaptureRules` feeds the result to iptables-restore.
 */
import { spawn } from "node:child_process";

export interface CaptureOptions {
  /** -p: port all outbound TCP is redirected to (15001). */
  readonly outboundPort: number;
  /** -z: port all inbound TCP is redirected to (15006). */
  readonly inboundPort: number;
  /** -u: uid whose traffic is never captured (the proxy, 1337). */
  readonly proxyUid: string;
  /** -g: gid whose traffic is never captured (default = proxyUid). */
  readonly proxyGid: string;
  /** -i: outbound IP ranges to capture ("*" = all). */
  readonly includeOutboundCidrs: readonly string[];
  /** -x: outbound IP ranges never captured. */
  readonly excludeOutboundCidrs: readonly string[];
  /** -b: inbound ports to capture ("*" = all). */
  readonly includeInboundPorts: readonly string[];
  /** -d: inbound ports never captured (15090,15021,15020). */
  readonly excludeInboundPorts: readonly string[];
  /** -o: outbound ports never captured. */
  readonly excludeOutboundPorts: readonly string[];
}

export const defaultCaptureOptions: CaptureOptions = {
  outboundPort: 15001,
  inboundPort: 15006,
  proxyUid: "1337",
  proxyGid: "1337",
  includeOutboundCidrs: ["*"],
  excludeOutboundCidrs: [],
  includeInboundPorts: ["*"],
  excludeInboundPorts: ["15090", "15021", "15020"],
  excludeOutboundPorts: [],
};

const list = (raw: string): string[] =>
  raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

/**
 * Parses istio-iptables' flags (`-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020`).
 * Returns the options or the problems, each naming the flag and value.
 */
export function parseCaptureArgs(
  argv: readonly string[],
): { ok: true; value: CaptureOptions } | { ok: false; reasons: string[] } {
  const o: { -readonly [K in keyof CaptureOptions]: CaptureOptions[K] } = { ...defaultCaptureOptions };
  const reasons: string[] = [];
  let gidSet = false;
  const port = (flag: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      reasons.push(`${flag} ${JSON.stringify(v)}: expected a port number from 1 to 65535`);
      return 0;
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const takeValue = (): string => (arg.startsWith("--") && eq > 0 ? arg.slice(eq + 1) : (argv[++i] ?? ""));
    switch (flag) {
      case "-p":
      case "--envoy-port":
        o.outboundPort = port(flag, takeValue());
        break;
      case "-z":
      case "--inbound-capture-port":
        o.inboundPort = port(flag, takeValue());
        break;
      case "-u":
      case "--proxy-uid":
        o.proxyUid = takeValue();
        break;
      case "-g":
      case "--proxy-gid":
        o.proxyGid = takeValue();
        gidSet = true;
        break;
      case "-m":
      case "--istio-inbound-interception-mode": {
        const mode = takeValue();
        if (mode !== "REDIRECT")
          reasons.push(`${flag} ${JSON.stringify(mode)}: only REDIRECT is supported (TPROXY is not)`);
        break;
      }
      case "-i":
      case "--istio-service-cidr":
        o.includeOutboundCidrs = list(takeValue());
        break;
      case "-x":
      case "--istio-service-exclude-cidr":
        o.excludeOutboundCidrs = list(takeValue());
        break;
      case "-b":
      case "--istio-inbound-ports":
        o.includeInboundPorts = list(takeValue());
        break;
      case "-d":
      case "--istio-local-exclude-ports":
        o.excludeInboundPorts = list(takeValue());
        break;
      case "-o":
      case "--istio-local-outbound-ports-exclude":
        o.excludeOutboundPorts = list(takeValue());
        break;
      default:
        if (flag.startsWith("--log")) {
          if (eq < 0 && !arg.includes("=")) i++;
          break;
        }
        reasons.push(`unknown flag ${JSON.stringify(arg)}`);
    }
  }
  if (!gidSet) o.proxyGid = o.proxyUid;
  for (const cidr of [...o.includeOutboundCidrs, ...o.excludeOutboundCidrs]) {
    if (cidr !== "*" && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr))
      reasons.push(`CIDR ${JSON.stringify(cidr)}: expected a.b.c.d/n or *`);
  }
  for (const p of [...o.includeInboundPorts, ...o.excludeInboundPorts, ...o.excludeOutboundPorts]) {
    if (p !== "*" && !/^\d{1,5}$/.test(p)) reasons.push(`port ${JSON.stringify(p)}: expected a port number or *`);
  }
  return reasons.length > 0 ? { ok: false, reasons } : { ok: true, value: o };
}

/** The iptables-restore input for the nat table. Pure. */
export function buildCaptureRules(o: CaptureOptions): string {
  const r: string[] = [
    "*nat",
    ":ISTIO_INBOUND - [0:0]",
    ":ISTIO_IN_REDIRECT - [0:0]",
    ":ISTIO_OUTPUT - [0:0]",
    ":ISTIO_REDIRECT - [0:0]",
  ];
  r.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`);
  r.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);

  // Inbound: everything (or the listed ports) except the excluded ports goes to the inbound port.
  if (o.includeInboundPorts.length > 0) {
    r.push("-A PREROUTING -p tcp -j ISTIO_INBOUND");
    if (o.includeInboundPorts.includes("*")) {
      for (const p of o.excludeInboundPorts) r.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`);
      r.push("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
    } else {
      for (const p of o.includeInboundPorts) r.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j ISTIO_IN_REDIRECT`);
    }
  }

  r.push("-A OUTPUT -p tcp -j ISTIO_OUTPUT");
  for (const p of o.excludeOutboundPorts) r.push(`-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`);
  // The sidecar's own connections to the pod's IP on lo are inbound traffic for the app (hairpin):
  // send them through inbound capture; its other traffic is never captured, or it would loop.
  for (const [kind, id] of [
    ["uid", o.proxyUid],
    ["gid", o.proxyGid],
  ] as const) {
    r.push(`-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --${kind}-owner ${id} -j ISTIO_IN_REDIRECT`);
    r.push(`-A ISTIO_OUTPUT -o lo -m owner ! --${kind}-owner ${id} -j RETURN`);
    r.push(`-A ISTIO_OUTPUT -m owner --${kind}-owner ${id} -j RETURN`);
  }
  r.push("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN");
  for (const cidr of o.excludeOutboundCidrs) r.push(`-A ISTIO_OUTPUT -d ${cidr} -j RETURN`);
  if (o.includeOutboundCidrs.includes("*")) {
    r.push("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
  } else {
    for (const cidr of o.includeOutboundCidrs) r.push(`-A ISTIO_OUTPUT -d ${cidr} -j ISTIO_REDIRECT`);
  }
  r.push("COMMIT");
  return `${r.join("\n")}\n`;
}

/** Applies the rules with iptables-restore (in the current network namespace). Rejects with iptables' own message. */
export function applyCaptureRules(rules: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("iptables-restore", ["--noflush"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", (err) =>
      reject(new Error(`cannot run iptables-restore (${err.message}); install iptables (apt-get install iptables)`)),
    );
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`iptables-restore failed (exit ${code}): ${stderr.trim()}`)),
    );
    child.stdin.end(rules);
  });
}
