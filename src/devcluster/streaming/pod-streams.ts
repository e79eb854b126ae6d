/**
 * PodStreams for a local node: `kubectl exec` over WebSocket (v5/v4 channel protocol) and
 * SPDY/3.1, `kubectl port-forward` over SPDY, over SPDY tunnelled in a WebSocket
 * (`SPDY/3.1+portforward.k8s.io`, kubectl ≥ 1.31) and over the WebSocket channel protocol,
 * and `kubectl logs` (container, follow, previous, tailLines, limitBytes).
 */
import type { ChildProcess } from "node:child_process";
import { createReadStream, existsSync, statSync } from "node:fs";
import { type IncomingMessage, STATUS_CODES, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { createWebSocketStream, type RawData, WebSocket, WebSocketServer } from "ws";
import { errorMessage, type Logger, silentLogger, sleep } from "../../base/index.js";
import type { PodStreams } from "../api/plugins.js";
import type { KubeObject } from "../api/types.js";
import type { LocalNode } from "../node/index.js";
import { exitStatus, findContainer, relayToPodPort, spawnInContainer } from "./exec.js";
import { headerValues, type SpdyStream, serveSpdy } from "./spdy.js";

const reasons: Record<number, string> = {
  400: "BadRequest",
  403: "Forbidden",
  404: "NotFound",
  500: "InternalError",
};

function statusJson(code: number, message: string): string {
  return JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: reasons[code] ?? "InternalError",
    code,
  });
}

/** Answers an upgrade request with an HTTP error and a Status body, then closes the socket. */
function rejectUpgrade(socket: Duplex, code: number, message: string, extra: Record<string, string> = {}): void {
  const body = statusJson(code, message);
  const headers = Object.entries({
    "Content-Type": "application/json",
    "Content-Length": String(Buffer.byteLength(body)),
    Connection: "close",
    ...extra,
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? "Error"}\r\n${headers}\r\n${body}`);
}

const wsExecProtocols = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
];
const spdyExecProtocols = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];
const spdyTunnelProtocol = "SPDY/3.1+portforward.k8s.io";
const wsPortForwardProtocols = ["v4.channel.k8s.io", "portforward.k8s.io"];

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

interface ExecFlags {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

function flagsOf(query: URLSearchParams): ExecFlags {
  const on = (k: string) => ["true", "1"].includes(query.get(k) ?? "");
  const tty = on("tty");
  return { stdin: on("stdin"), stdout: on("stdout"), stderr: on("stderr") && !tty, tty };
}

/** Options of createPodStreams. */
export interface PodStreamsOptions {
  readonly node: LocalNode;
  readonly log?: Logger;
}

/** Creates the PodStreams the API server delegates exec, attach, port-forward and logs to. */
export function createPodStreams(opts: PodStreamsOptions): PodStreams {
  return new NodePodStreams(opts);
}

class NodePodStreams implements PodStreams {
  readonly #node: LocalNode;
  readonly #log: Logger;
  readonly #wss: WebSocketServer;
  /** Upgrade requests answered with the SPDY tunnel subprotocol. */
  readonly #tunnels = new WeakSet<IncomingMessage>();

  constructor(opts: PodStreamsOptions) {
    this.#node = opts.node;
    this.#log = (opts.log ?? silentLogger).child("streams");
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      handleProtocols: (offered) => {
        for (const p of [spdyTunnelProtocol, ...wsExecProtocols, "portforward.k8s.io"]) if (offered.has(p)) return p;
        return false;
      },
    });
    this.#wss.on("headers", (headers: string[], req: IncomingMessage) => {
      if (this.#tunnels.has(req)) headers.push(`Sec-WebSocket-Protocol: ${spdyTunnelProtocol}`);
    });
  }

  upgrade(
    kind: "exec" | "attach" | "portforward",
    pod: KubeObject,
    query: URLSearchParams,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): void {
    socket.on("error", () => {});
    const upgrade = (req.headers.upgrade ?? "").toLowerCase();
    const isWs = upgrade === "websocket";
    const isSpdy = upgrade.startsWith("spdy/3.1");
    if (!isWs && !isSpdy) {
      rejectUpgrade(socket, 400, `unsupported upgrade "${req.headers.upgrade ?? ""}": use WebSocket or SPDY/3.1`);
      return;
    }
    try {
      if (kind === "attach") {
        rejectUpgrade(
          socket,
          400,
          "attach is not supported by local clusters (containers have no attachable terminal); use kubectl exec or kubectl logs -f",
        );
      } else if (kind === "exec") {
        this.#exec(pod, query, req, socket, head, isWs);
      } else {
        this.#portForward(pod, query, req, socket, head, isWs);
      }
    } catch (err) {
      this.#log.error("stream failed", { kind, error: errorMessage(err) });
      rejectUpgrade(socket, 500, errorMessage(err));
    }
  }

  #opened(kind: string, transport: string, pod: KubeObject): void {
    this.#log.debug("stream opened", { kind, transport, pod: `${pod.metadata.namespace}/${pod.metadata.name}` });
  }

  #exec(
    pod: KubeObject,
    query: URLSearchParams,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    isWs: boolean,
  ): void {
    const command = query.getAll("command");
    if (command.length === 0) {
      rejectUpgrade(socket, 400, "you must specify at least one command for the container");
      return;
    }
    const target = findContainer(this.#node, pod, query.get("container"));
    if (!target.ok) {
      rejectUpgrade(socket, target.code, target.message);
      return;
    }
    const flags = flagsOf(query);
    if (isWs) {
      const offered = new Set(headerValues(req.headers["sec-websocket-protocol"]));
      if (!wsExecProtocols.some((p) => offered.has(p))) {
        rejectUpgrade(socket, 400, `no supported exec protocol offered; supported: ${wsExecProtocols.join(", ")}`);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.#opened("exec", `websocket ${ws.protocol}`, pod);
        const child = spawnInContainer(target.running, command, flags.stdin);
        wsExec(ws, child, flags, command);
      });
      return;
    }
    const offered = headerValues(req.headers["x-stream-protocol-version"]);
    const protocol = offered.find((p) => spdyExecProtocols.includes(p));
    if (!protocol) {
      rejectUpgrade(socket, 403, `no supported stream protocol in ${JSON.stringify(offered)}`, {
        "X-Accepted-Stream-Protocol-Versions": spdyExecProtocols.join(", "),
      });
      return;
    }
    acceptSpdy(socket, head, protocol);
    this.#opened("exec", `spdy ${protocol}`, pod);
    const expected = 1 + (flags.stdin ? 1 : 0) + (flags.stdout ? 1 : 0) + (flags.stderr ? 1 : 0) + (flags.tty ? 1 : 0);
    const streams = new Map<string, SpdyStream>();
    let started = false;
    const giveUp = setTimeout(() => socket.destroy(), 30_000);
    const conn = serveSpdy(socket, (s) => {
      const type = s.headers.streamtype ?? "";
      streams.set(type, s);
      if (started || streams.size < expected) return;
      started = true;
      clearTimeout(giveUp);
      const child = spawnInContainer(target.running, command, flags.stdin);
      const error = streams.get("error");
      const stdout = streams.get("stdout");
      const stderr = streams.get("stderr");
      const stdin = streams.get("stdin");
      if (stdout) child.stdout?.pipe(stdout);
      else child.stdout?.resume();
      if (stderr) child.stderr?.pipe(stderr);
      else if (flags.tty && stdout) child.stderr?.pipe(stdout, { end: false });
      else child.stderr?.resume();
      if (stdin && child.stdin) {
        child.stdin.on("error", () => {});
        stdin.pipe(child.stdin);
      }
      const finish = (code: number | undefined, message?: string) => {
        if (protocol === "v4.channel.k8s.io")
          error?.end(JSON.stringify(exitStatus(code, message ?? command.join(" "))));
        else error?.end(code === 0 ? "" : (message ?? `command terminated with exit code ${code}`));
        setTimeout(() => conn.end(), 1000).unref();
      };
      child.once("error", (err) => finish(undefined, `cannot run ${JSON.stringify(command)}: ${err.message}`));
      child.once("close", (code) => finish(code ?? 137));
      socket.once("close", () => {
        if (child.exitCode === null) child.kill("SIGKILL");
      });
    });
  }

  #portForward(
    pod: KubeObject,
    query: URLSearchParams,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    isWs: boolean,
  ): void {
    const worker = this.#node.worker(pod.metadata.namespace ?? "default", pod.metadata.name ?? "", pod.metadata.uid);
    const netns = worker?.netns;
    if (!netns) {
      rejectUpgrade(socket, 400, `pod ${pod.metadata.namespace}/${pod.metadata.name} is not running on this node`);
      return;
    }
    if (isWs) {
      const offered = new Set(headerValues(req.headers["sec-websocket-protocol"]));
      if (offered.has(spdyTunnelProtocol)) {
        // `ws` refuses this subprotocol ("/" is not a token character): negotiate it ourselves.
        delete req.headers["sec-websocket-protocol"];
        this.#tunnels.add(req);
        this.#wss.handleUpgrade(req, socket, head, (ws) => {
          this.#opened("portforward", "spdy-over-websocket", pod);
          const duplex = createWebSocketStream(ws);
          duplex.on("error", () => {});
          serveSpdyPortForward(duplex, netns);
        });
        return;
      }
      if (![...wsPortForwardProtocols].some((p) => offered.has(p))) {
        rejectUpgrade(
          socket,
          400,
          `no supported port-forward protocol offered; supported: ${spdyTunnelProtocol}, v4.channel.k8s.io`,
        );
        return;
      }
      const ports = query
        .getAll("ports")
        .flatMap((p) => p.split(","))
        .map(Number)
        .filter((p) => Number.isInteger(p) && p > 0 && p < 65536);
      if (ports.length === 0) {
        rejectUpgrade(socket, 400, 'query parameter "ports" is required: the pod ports to forward');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.#opened("portforward", `websocket ${ws.protocol}`, pod);
        wsPortForward(ws, netns, ports);
      });
      return;
    }
    const offered = headerValues(req.headers["x-stream-protocol-version"]);
    if (!offered.includes("portforward.k8s.io")) {
      rejectUpgrade(socket, 403, `no supported stream protocol in ${JSON.stringify(offered)}`, {
        "X-Accepted-Stream-Protocol-Versions": "portforward.k8s.io",
      });
      return;
    }
    acceptSpdy(socket, head, "portforward.k8s.io");
    this.#opened("portforward", "spdy", pod);
    serveSpdyPortForward(socket, netns);
  }

  async logs(pod: KubeObject, query: URLSearchParams, res: ServerResponse): Promise<void> {
    const ns = pod.metadata.namespace ?? "default";
    const name = pod.metadata.name ?? "";
    const spec = (pod.spec ?? {}) as { containers?: { name: string }[]; initContainers?: { name: string }[] };
    const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.name);
    const fail = (code: number, message: string) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(statusJson(code, message));
    };
    let container = query.get("container") ?? "";
    if (!container) {
      if ((spec.containers ?? []).length !== 1) {
        fail(400, `a container name must be specified for pod ${name}, choose one of: [${all.join(" ")}]`);
        return;
      }
      container = spec.containers?.[0]?.name ?? "";
    }
    if (!all.includes(container)) {
      fail(400, `container ${container} is not valid for pod ${name}`);
      return;
    }
    const worker = this.#node.worker(ns, name, pod.metadata.uid);
    const statuses = [
      ...(((pod.status as { containerStatuses?: unknown[] } | undefined)?.containerStatuses ?? []) as {
        name: string;
        state?: { waiting?: { reason?: string } };
      }[]),
      ...(((pod.status as { initContainerStatuses?: unknown[] } | undefined)?.initContainerStatuses ?? []) as {
        name: string;
        state?: { waiting?: { reason?: string } };
      }[]),
    ];
    const files = worker?.logFiles(container);
    const previous = ["true", "1"].includes(query.get("previous") ?? "");
    const path = previous ? files?.previous : files?.current;
    if (!worker || !path || !existsSync(path)) {
      const waiting = statuses.find((s) => s.name === container)?.state?.waiting?.reason;
      fail(
        400,
        previous
          ? `previous terminated container "${container}" in pod "${name}" not found`
          : `container "${container}" in pod "${name}" is waiting to start: ${waiting ?? "ContainerCreating"}`,
      );
      return;
    }
    const follow = !previous && ["true", "1"].includes(query.get("follow") ?? "");
    const tail = query.get("tailLines");
    const limit = query.get("limitBytes");
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    let start = 0;
    const size = statSync(path).size;
    if (tail !== null && Number(tail) >= 0) start = await tailOffset(path, size, Number(tail));
    let remaining = limit !== null && Number(limit) > 0 ? Number(limit) : Number.POSITIVE_INFINITY;
    let pos = start;
    const copy = async (end: number) => {
      if (end <= pos || remaining <= 0) return;
      const until = Math.min(end, pos + remaining);
      for await (const chunk of createReadStream(path, { start: pos, end: until - 1 })) {
        if (!res.write(chunk as Buffer)) await new Promise((r) => res.once("drain", r));
      }
      remaining -= until - pos;
      pos = until;
    };
    await copy(size);
    if (!follow) {
      res.end();
      return;
    }
    const pid = worker.running(container)?.pid;
    let closed = false;
    res.once("close", () => {
      closed = true;
    });
    // Follows the current run of the container: ends when that process is gone and its output read.
    while (!closed && remaining > 0) {
      const end = existsSync(path) ? statSync(path).size : pos;
      if (end > pos) {
        await copy(end);
        continue;
      }
      const stillRunning = pid !== undefined && worker.running(container)?.pid === pid && !worker.stopped;
      if (!stillRunning) break;
      await sleep(200);
    }
    res.end();
  }
}

/** Byte offset where the last `lines` lines of a file start. */
async function tailOffset(path: string, size: number, lines: number): Promise<number> {
  if (lines === 0) return size;
  let newlines = 0;
  const chunk = 64 * 1024;
  let end = size;
  // A trailing newline ends the last line; it does not start a new one.
  let skipLast = true;
  while (end > 0) {
    const start = Math.max(0, end - chunk);
    const bufs: Buffer[] = [];
    for await (const b of createReadStream(path, { start, end: end - 1 })) bufs.push(b as Buffer);
    const buf = Buffer.concat(bufs);
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 10) continue;
      if (skipLast && start + i === size - 1) continue;
      newlines++;
      if (newlines === lines) return start + i + 1;
    }
    skipLast = false;
    end = start;
  }
  return 0;
}

function acceptSpdy(socket: Duplex, head: Buffer, protocol: string): void {
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  );
  if (head.length > 0) socket.unshift(head);
}

/** The WebSocket channel protocol for exec: 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize; v5 adds 255 close. */
function wsExec(ws: WebSocket, child: ChildProcess, flags: ExecFlags, command: readonly string[]): void {
  const statusChannel = ws.protocol === "v5.channel.k8s.io" || ws.protocol === "v4.channel.k8s.io";
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
  child.stdout?.on("data", (d: Buffer) => send(1, d));
  child.stderr?.on("data", (d: Buffer) => send(flags.tty ? 1 : 2, d));
  child.stdin?.on("error", () => {});
  ws.on("message", (data) => {
    const b = toBuffer(data);
    if (b.length === 0) return;
    if (b[0] === 0) child.stdin?.write(b.subarray(1));
    else if (b[0] === 255 && b[1] === 0) child.stdin?.end();
  });
  ws.on("error", () => {});
  ws.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let done = false;
  const finish = (code: number | undefined, message?: string) => {
    if (done) return;
    done = true;
    if (statusChannel) send(3, Buffer.from(JSON.stringify(exitStatus(code, message ?? command.join(" ")))));
    else if (code !== 0) send(3, Buffer.from(message ?? `command terminated with exit code ${code}`));
    ws.close(1000);
  };
  child.once("error", (err) => finish(undefined, `cannot run ${JSON.stringify(command)}: ${err.message}`));
  child.once("close", (code) => finish(code ?? 137));
}

/** SPDY port-forward: pairs of `error` and `data` streams per requestID, each relayed to `port` in the pod. */
function serveSpdyPortForward(socket: Duplex, netns: string): void {
  const pairs = new Map<string, { error?: SpdyStream; data?: SpdyStream; started?: boolean }>();
  const conn = serveSpdy(socket, (s) => {
    const id = s.headers.requestid ?? "0";
    const pair = pairs.get(id) ?? {};
    pairs.set(id, pair);
    if (s.headers.streamtype === "error") pair.error = s;
    else if (s.headers.streamtype === "data") pair.data = s;
    else s.end();
    const { error, data } = pair;
    if (!error || !data || pair.started) return;
    pair.started = true;
    const port = Number(data.headers.port ?? error.headers.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      error.end(`invalid port ${JSON.stringify(data.headers.port)}`);
      data.end();
      return;
    }
    const relay = relayToPodPort(netns, port);
    let stderr = "";
    relay.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    relay.stdin?.on("error", () => {});
    if (relay.stdin) data.pipe(relay.stdin);
    relay.stdout?.pipe(data);
    relay.once("close", (code) => {
      if (code !== 0) error.end(stderr || `port-forward to port ${port} failed`);
      else error.end();
      pairs.delete(id);
    });
  });
  socket.once("close", () => conn.removeAllListeners());
}

/** The WebSocket channel protocol for port-forward: channel 2i data and 2i+1 errors of the i-th port. */
function wsPortForward(ws: WebSocket, netns: string, ports: readonly number[]): void {
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
  const relays: ChildProcess[] = [];
  let open = ports.length;
  ports.forEach((port, i) => {
    const portBytes = Buffer.from([port & 0xff, port >> 8]);
    send(2 * i, portBytes);
    send(2 * i + 1, portBytes);
    const relay = relayToPodPort(netns, port);
    relays.push(relay);
    relay.stdin?.on("error", () => {});
    relay.stdout?.on("data", (d: Buffer) => send(2 * i, d));
    let stderr = "";
    relay.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    relay.once("close", (code) => {
      if (code !== 0) send(2 * i + 1, Buffer.from(stderr || `port-forward to port ${port} failed`));
      open--;
      if (open === 0) ws.close(1000);
    });
  });
  ws.on("message", (data) => {
    const b = toBuffer(data);
    const ch = b[0];
    if (ch === undefined || ch % 2 !== 0) return;
    relays[ch / 2]?.stdin?.write(b.subarray(1));
  });
  ws.on("error", () => {});
  ws.on("close", () => {
    for (const r of relays) if (r.exitCode === null) r.kill("SIGKILL");
  });
}
