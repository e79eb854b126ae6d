/**
 * Container probes as the kubelet runs them: httpGet and tcpSocket from the host to the pod's
 * IP (the pod's IP is reachable from the host over the bridge), exec inside the container's
 * namespaces. A probe never throws: the result says why it failed.
 */
import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect } from "node:net";
import type { Probe } from "./pod-types.js";
import { privilegeArgs } from "./process.js";
import type { RunningContainer } from "./pod-worker.js";

export interface ProbeResult {
  readonly ok: boolean;
  readonly output: string;
}

function port(p: number | string, ports: Record<string, number>): number {
  return typeof p === "number" ? p : (ports[p] ?? Number(p));
}

/** Runs one probe attempt with its timeout. */
export async function runProbe(
  probe: Probe,
  target: { podIP: string; running: RunningContainer | undefined; namedPorts?: Record<string, number> },
  signal: AbortSignal,
): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const ports = target.namedPorts ?? {};
  if (probe.httpGet) {
    const g = probe.httpGet;
    const host = g.host || target.podIP;
    const p = port(g.port, ports);
    return new Promise((resolve) => {
      const req = request(
        {
          host,
          port: p,
          path: g.path ?? "/",
          method: "GET",
          timeout: timeoutMs,
          signal,
          headers: Object.fromEntries([
            ["user-agent", "kube-probe/1.32"],
            ...(g.httpHeaders ?? []).map((h) => [h.name, h.value]),
          ]),
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve({ ok: code >= 200 && code < 400, output: `HTTP probe failed with statuscode: ${code}` });
        },
      );
      req.on("timeout", () => {
        req.destroy();
        resolve({ ok: false, output: `Get "http://${host}:${p}${g.path ?? "/"}": context deadline exceeded` });
      });
      req.on("error", (err) =>
        resolve({ ok: false, output: `Get "http://${host}:${p}${g.path ?? "/"}": ${err.message}` }),
      );
      req.end();
    });
  }
  if (probe.tcpSocket) {
    const host = probe.tcpSocket.host || target.podIP;
    const p = port(probe.tcpSocket.port, ports);
    return new Promise((resolve) => {
      const sock = connect({ host, port: p, timeout: timeoutMs });
      sock.once("connect", () => {
        sock.destroy();
        resolve({ ok: true, output: "" });
      });
      sock.once("timeout", () => {
        sock.destroy();
        resolve({ ok: false, output: `dial tcp ${host}:${p}: i/o timeout` });
      });
      sock.once("error", (err) => resolve({ ok: false, output: `dial tcp ${host}:${p}: ${err.message}` }));
    });
  }
  if (probe.exec) {
    const r = target.running;
    if (!r) return { ok: false, output: "container is not running" };
    const argv = probe.exec.command ?? [];
    return new Promise((resolve) => {
      const child = spawn(
        "nsenter",
        ["-t", String(r.pid), "-m", "-n", "-u", "--", ...privilegeArgs(r.security), ...argv],
        {
          env: { ...r.env },
          stdio: ["ignore", "pipe", "pipe"],
          timeout: timeoutMs,
          cwd: "/",
        },
      );
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      child.once("error", (err) => resolve({ ok: false, output: err.message }));
      child.once("close", (code) => resolve({ ok: code === 0, output: out.trim() || `exit code ${code}` }));
    });
  }
  if (probe.grpc) {
    // gRPC health checking is not implemented here; a TCP connect stands in for it.
    return runProbe({ ...probe, grpc: undefined, tcpSocket: { port: probe.grpc.port } }, target, signal);
  }
  return { ok: true, output: "" };
}
