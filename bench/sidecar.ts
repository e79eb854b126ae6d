/**
 * Data-path benchmark, one run side by side on this machine: the same HTTP load (1 KiB
 * responses, keep-alive) sent direct to the app, through two Isthmus sidecars (client and
 * server side, mutual TLS between them), and through two HAProxy hops (Debian's haproxy, also
 * with mutual TLS between them). At a fixed 1,000 req/s (hey -c 10 -q 100) and at the maximum
 * (wrk -c 32): p50/p90/p99 latency, added latency against direct, CPU seconds per 1,000
 * requests per proxy process, and proxy memory (RSS). Needs hey, wrk and haproxy (apt).
 * Run alone with `node --import tsx bench/sidecar.ts`.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIntermediateCa, createRootCa, issueKeyedLeaf } from "../src/ca/pki.js";

export interface PathResult {
  readonly path: string;
  readonly fixed: { p50: number; p90: number; p99: number; rps: number };
  readonly max: { p50: number; p90: number; p99: number; rps: number };
  /** CPU seconds per 1,000 requests, per proxy process, at the fixed rate (0 for direct). */
  readonly cpuPer1000: number;
  /** Resident memory per proxy process after the runs, MB (0 for direct). */
  readonly rssMb: number;
}

const here = import.meta.dirname;
const repo = join(here, "..");
const ports = { app: 18080, isthmusClient: 18101, isthmusServer: 18102, haproxyClient: 18201, haproxyServer: 18202 };

function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${out}`)));
  });
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(m?.[1] ?? 0) / 102.4) / 10;
}

const ms = (s: string, unit: string): number =>
  unit === "us" ? Number(s) / 1000 : unit === "s" ? Number(s) * 1000 : Number(s);

function hey(url: string, seconds: number): { p50: number; p90: number; p99: number; rps: number } {
  const out = execFileSync("hey", ["-z", `${seconds}s`, "-c", "10", "-q", "100", "-disable-compression", url], {
    encoding: "utf8",
  });
  const pct = (p: number) => Number(new RegExp(`${p}%+ in ([\\d.]+) secs`).exec(out)?.[1] ?? Number.NaN) * 1000;
  return { p50: pct(50), p90: pct(90), p99: pct(99), rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]) };
}

function wrk(url: string, seconds: number): { p50: number; p90: number; p99: number; rps: number } {
  const out = execFileSync("wrk", ["-t2", "-c32", `-d${seconds}s`, "--latency", url], { encoding: "utf8" });
  const pct = (p: number) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? ms(m[1] ?? "", m[2] ?? "ms") : Number.NaN;
  };
  return { p50: pct(50), p90: pct(90), p99: pct(99), rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]) };
}

async function certificates(dir: string): Promise<void> {
  const root = await createRootCa();
  const inter = await createIntermediateCa({ parent: root, cluster: "bench" });
  const issuer = { certPem: inter["ca-cert.pem"], keyPem: inter["ca-key.pem"] };
  writeFileSync(join(dir, "root.pem"), root.certPem);
  for (const name of ["client", "server"]) {
    const leaf = await issueKeyedLeaf({
      issuer,
      subject: { kind: "workload", spiffeId: `spiffe://cluster.local/ns/bench/sa/${name}` },
      ttlMs: 3_600_000,
    });
    writeFileSync(join(dir, `${name}.chain.pem`), leaf.certPem + inter["ca-cert.pem"]);
    writeFileSync(join(dir, `${name}.key.pem`), leaf.keyPem);
    writeFileSync(join(dir, `${name}.haproxy.pem`), leaf.certPem + inter["ca-cert.pem"] + leaf.keyPem);
  }
}

function haproxyConfig(dir: string, side: "client" | "server"): string {
  const global =
    "global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n";
  if (side === "client") {
    return `${global}frontend in\n  bind 127.0.0.1:${ports.haproxyClient}\n  default_backend out\nbackend out\n  http-reuse always\n  server s 127.0.0.1:${ports.haproxyServer} ssl crt ${dir}/client.haproxy.pem ca-file ${dir}/root.pem verify required\n`;
  }
  return `${global}frontend in\n  bind 127.0.0.1:${ports.haproxyServer} ssl crt ${dir}/server.haproxy.pem ca-file ${dir}/root.pem verify required\n  default_backend app\nbackend app\n  http-reuse always\n  server a 127.0.0.1:${ports.app}\n`;
}

/** Runs the whole comparison; `seconds` per load run. */
export async function runSidecarBench(seconds = 10): Promise<PathResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "isthmus-bench-sidecar-"));
  const children: ChildProcess[] = [];
  const start = (cmd: string, args: string[], _what: string) => {
    const c = spawn(cmd, args, { cwd: repo, stdio: ["ignore", "pipe", "inherit"] });
    children.push(c);
    return c;
  };
  try {
    await certificates(dir);
    const app = start(process.execPath, ["--import", "tsx", join(here, "support", "app.ts"), String(ports.app)], "app");
    await waitReady(app, "app");
    const server = start(
      process.execPath,
      [
        "--import",
        "tsx",
        join(here, "support", "sidecar-proc.ts"),
        "server",
        String(ports.isthmusServer),
        String(ports.app),
        dir,
      ],
      "server sidecar",
    );
    const client = start(
      process.execPath,
      [
        "--import",
        "tsx",
        join(here, "support", "sidecar-proc.ts"),
        "client",
        String(ports.isthmusClient),
        String(ports.isthmusServer),
        dir,
      ],
      "client sidecar",
    );
    await Promise.all([waitReady(server, "server sidecar"), waitReady(client, "client sidecar")]);
    for (const side of ["client", "server"] as const)
      writeFileSync(join(dir, `haproxy-${side}.cfg`), haproxyConfig(dir, side));
    const hServer = start("haproxy", ["-db", "-f", join(dir, "haproxy-server.cfg")], "haproxy server");
    const hClient = start("haproxy", ["-db", "-f", join(dir, "haproxy-client.cfg")], "haproxy client");
    await new Promise((r) => setTimeout(r, 500));

    const paths: { path: string; url: string; procs: ChildProcess[] }[] = [
      { path: "direct", url: `http://127.0.0.1:${ports.app}/`, procs: [] },
      { path: "two Isthmus sidecars (mTLS)", url: `http://127.0.0.1:${ports.isthmusClient}/`, procs: [client, server] },
      {
        path: "two HAProxy 2.6 hops (mTLS)",
        url: `http://127.0.0.1:${ports.haproxyClient}/`,
        procs: [hClient, hServer],
      },
    ];
    const results: PathResult[] = [];
    for (const p of paths) {
      execFileSync("hey", ["-n", "2000", "-c", "10", p.url], { stdio: "ignore" });
      const cpu0 = p.procs.map((c) => cpuSeconds(c.pid ?? 0));
      const fixed = hey(p.url, seconds);
      const cpu1 = p.procs.map((c) => cpuSeconds(c.pid ?? 0));
      const requests = fixed.rps * seconds;
      const perProc = p.procs.length === 0 ? 0 : cpu1.reduce((s, v, i) => s + v - (cpu0[i] ?? 0), 0) / p.procs.length;
      const max = wrk(p.url, seconds);
      results.push({
        path: p.path,
        fixed,
        max,
        cpuPer1000: Math.round((perProc / (requests / 1000)) * 1000) / 1000,
        rssMb: p.procs.length === 0 ? 0 : Math.max(...p.procs.map((c) => rssMb(c.pid ?? 0))),
      });
    }
    return results;
  } finally {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The results as a Markdown table, latencies added over direct. */
export function sidecarTable(results: readonly PathResult[]): string {
  const direct = results[0];
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "n/a");
  const rows = results.map((r) => {
    const add = (k: "p50" | "p90" | "p99") => (r === direct ? "—" : `+${f(r.fixed[k] - (direct?.fixed[k] ?? 0))}`);
    return `| ${r.path} | ${f(r.fixed.p50)} / ${f(r.fixed.p90)} / ${f(r.fixed.p99)} | ${add("p50")} / ${add("p90")} / ${add("p99")} | ${Math.round(r.max.rps)} | ${f(r.max.p50)} / ${f(r.max.p99)} | ${r === direct ? "—" : r.cpuPer1000} | ${r === direct ? "—" : r.rssMb} |`;
  });
  return [
    "| path | 1,000 req/s: p50 / p90 / p99 ms | added over direct, ms | max req/s | at max: p50 / p99 ms | CPU s per 1,000 req per proxy | RSS MB per proxy |",
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

if (process.argv[1]?.endsWith("sidecar.ts")) {
  const results = await runSidecarBench(Number(process.env.BENCH_SECONDS ?? 10));
  process.stdout.write(`${sidecarTable(results)}\n`);
}
