/**
 * The node on a real network (root): two in-process clusters on one network, pods as
 * processes in namespaces, Services through DNS and the ClusterIP proxy, unknown images,
 * deletion, exec/logs through PodStreams with a real WebSocket client, and a clean machine
 * after teardown.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { waitFor } from "../../base/index.js";
import type { KubeObject } from "../api/types.js";
import { Resources } from "../api/types.js";
import { listLinks, listNetns } from "../network/exec.js";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import {
  decodeResponse,
  encodeQuery,
  lookupCluster,
  netnsPrefix,
  PodNetworks,
  RecordType,
  Rcode,
  vethNames,
} from "../network/index.js";
import { createPodStreams } from "../streaming/index.js";
import { type HarnessCluster, startHarnessCluster } from "./harness.js";

interface PodStatusView {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: { name: string; ready: boolean; state: { waiting?: { reason: string; message?: string } } }[];
}
const statusOf = (p: KubeObject): PodStatusView => (p.status ?? {}) as PodStatusView;
const isReady = (p: KubeObject) =>
  statusOf(p).conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

async function readyPod(c: HarnessCluster, ns: string, selector: string): Promise<KubeObject> {
  return waitFor(
    `a ready pod ${selector} in ${c.name}`,
    async () => (await c.client.list(Resources.pods, { namespace: ns, labelSelector: selector })).items.find(isReady),
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

const namespace = (name: string): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } });

function deployment(name: string, labels: Record<string, string>, container: Record<string, unknown>): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "sample", labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { terminationGracePeriodSeconds: 0, containers: [container] },
      },
    },
  };
}

/** An HTTP server that routes pods/exec upgrades and pods/log to PodStreams, as the API server does. */
function streamServer(c: HarnessCluster): Server {
  const streams = createPodStreams({ node: c.node });
  const route = (url: string) => {
    const u = new URL(url, "http://x");
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|log|portforward)$/.exec(u.pathname);
    return m ? { ns: m[1] ?? "", name: m[2] ?? "", sub: m[3] ?? "", query: u.searchParams } : undefined;
  };
  const server = createServer(async (req, res) => {
    const r = route(req.url ?? "");
    if (r?.sub !== "log") {
      res.writeHead(404).end();
      return;
    }
    const pod = await c.client.get(Resources.pods, r.ns, r.name);
    await streams.logs(pod, r.query, res);
  });
  server.on("upgrade", async (req, socket, head) => {
    const r = route(req.url ?? "");
    if (!r || (r.sub !== "exec" && r.sub !== "portforward")) {
      socket.destroy();
      return;
    }
    const pod = await c.client.get(Resources.pods, r.ns, r.name);
    streams.upgrade(r.sub, pod, r.query, req, socket, head);
  });
  return server;
}

interface ExecResult {
  stdout: string;
  stderr: string;
  status: { status?: string; details?: { causes?: { message: string }[] } };
}

/** Runs a command through the v5 WebSocket exec protocol, as kubectl 1.32 does. */
function wsExec(base: string, ns: string, pod: string, command: string[], stdin?: string): Promise<ExecResult> {
  const q = new URLSearchParams({
    container: "sleep",
    stdout: "true",
    stderr: "true",
    stdin: stdin ? "true" : "false",
  });
  for (const part of command) q.append("command", part);
  const ws = new WebSocket(`${base.replace("http", "ws")}/api/v1/namespaces/${ns}/pods/${pod}/exec?${q}`, [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
  ]);
  const out = { stdout: "", stderr: "", status: {} };
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      assert.equal(ws.protocol, "v5.channel.k8s.io");
      if (stdin !== undefined) {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(stdin)]));
        ws.send(Buffer.from([255, 0]));
      }
    });
    ws.on("message", (data: Buffer) => {
      const body = data.subarray(1).toString();
      if (data[0] === 1) out.stdout += body;
      else if (data[0] === 2) out.stderr += body;
      else if (data[0] === 3) out.status = JSON.parse(body);
    });
    ws.on("close", () => resolve(out));
    ws.on("error", reject);
  });
}

describe("local node on a real network", { timeout: 240_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), "isth-node-test-"));
  const network = `net-${process.pid}`;
  let c1: HarnessCluster;
  let c2: HarnessCluster;
  let server: Server;
  let base = "";
  const tags: string[] = [];

  before(async () => {
    const backoff = { initialMs: 500, maxMs: 2_000 };
    c1 = await startHarnessCluster({ home, name: "cluster1", network, backoff });
    c2 = await startHarnessCluster({ home, name: "cluster2", network, backoff });
    tags.push(netnsPrefix(c1.network), netnsPrefix(c2.network));
    server = streamServer(c1);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const c of [c1, c2]) {
      await c.client.create(Resources.namespaces, namespace("sample"));
      await c.client.create(
        Resources.deployments,
        deployment(
          "sleep",
          { app: "sleep" },
          { name: "sleep", image: "docker.io/curlimages/curl:8.16.0", command: ["/bin/sleep", "infinity"] },
        ),
      );
    }
    await c1.client.create(
      Resources.deployments,
      deployment(
        "helloworld-v1",
        { app: "helloworld", version: "v1" },
        {
          name: "helloworld",
          image: "docker.io/istio/examples-helloworld-v1",
          ports: [{ containerPort: 5000 }],
          readinessProbe: { httpGet: { path: "/health", port: 5000 }, periodSeconds: 1 },
        },
      ),
    );
    await c1.client.create(Resources.services, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "helloworld", namespace: "sample" },
      spec: { selector: { app: "helloworld" }, ports: [{ name: "http", port: 5000 }] },
    });
  });

  after(async () => {
    server?.close();
    await c1?.close();
    await c2?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it("runs helloworld with a pod IP and reports it Running and ready", async () => {
    const pod = await readyPod(c1, "sample", "app=helloworld");
    const st = statusOf(pod);
    assert.equal(st.phase, "Running");
    assert.match(st.podIP ?? "", /^10\.200\.\d+\.\d+$/);
    assert.match(pod.metadata.name ?? "", /^helloworld-v1-[a-z0-9]+-[a-z0-9]{5}$/);
    const node = await c1.client.get(Resources.nodes, undefined, "cluster1-control-plane");
    const conds = ((node.status as { conditions?: { type: string; status: string }[] }).conditions ?? []).filter(
      (c) => c.type === "Ready",
    );
    assert.deepEqual(
      conds.map((c) => c.status),
      ["True"],
    );
  });

  it("answers curl from the sleep pod by Service name (DNS + ClusterIP) and by pod IP", async () => {
    const hello = await readyPod(c1, "sample", "app=helloworld");
    const sleep = await readyPod(c1, "sample", "app=sleep");
    await waitFor("a ready endpoint of helloworld", async () =>
      (await c1.client.list(Resources.endpointslices, { namespace: "sample" })).items.some((s) =>
        ((s.endpoints ?? []) as { conditions?: { ready?: boolean } }[]).some((e) => e.conditions?.ready),
      ),
    );
    const byName = await waitFor(
      "curl by Service name",
      async () => {
        const r = await wsExec(base, "sample", sleep.metadata.name ?? "", [
          "curl",
          "-sS",
          "--max-time",
          "5",
          "helloworld.sample:5000/hello",
        ]);
        return r.status.status === "Success" ? r : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    assert.equal(byName.stdout, `Hello version: v1, instance: ${hello.metadata.name}\n`);
    const byIp = await wsExec(base, "sample", sleep.metadata.name ?? "", [
      "curl",
      "-sS",
      `http://${statusOf(hello).podIP}:5000/hello`,
    ]);
    assert.equal(byIp.stdout, `Hello version: v1, instance: ${hello.metadata.name}\n`);
  });

  it("answers DNS over UDP and TCP on the kube-dns ClusterIP", async () => {
    const dns = c1.network.dnsServiceIp;
    const svc = await c1.client.get(Resources.services, "sample", "helloworld");
    const clusterIP = (svc.spec as { clusterIP: string }).clusterIP;
    const udp = createSocket("udp4");
    const udpAnswer = await new Promise<Buffer>((resolve, reject) => {
      udp.once("message", resolve);
      udp.once("error", reject);
      udp.send(encodeQuery({ id: 11, name: "helloworld.sample.svc.cluster.local", type: RecordType.A }), 53, dns);
    });
    udp.close();
    assert.deepEqual(
      decodeResponse(udpAnswer).answers.map((a) => a.address),
      [clusterIP],
    );
    const query = encodeQuery({ id: 12, name: "nothing.sample.svc.cluster.local", type: RecordType.A });
    const framed = Buffer.concat([Buffer.from([query.length >> 8, query.length & 255]), query]);
    const tcpAnswer = await new Promise<Buffer>((resolve, reject) => {
      const sock = connect({ host: dns, port: 53 }, () => sock.write(framed));
      let buf = Buffer.alloc(0);
      sock.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          sock.end();
          resolve(buf.subarray(2));
        }
      });
      sock.on("error", reject);
    });
    const r = decodeResponse(tcpAnswer);
    assert.equal(r.id, 12);
    assert.equal(r.rcode, Rcode.NXDOMAIN);
  });

  it("reaches a pod of another cluster on the same network at its own IP", async () => {
    const hello = await readyPod(c1, "sample", "app=helloworld");
    const sleep2 = await readyPod(c2, "sample", "app=sleep");
    const w = c2.node.worker("sample", sleep2.metadata.name ?? "");
    const running = w?.running("sleep");
    assert.ok(running);
    const { spawnInContainer } = await import("../streaming/index.js");
    const child = spawnInContainer(running, ["curl", "-sS", `http://${statusOf(hello).podIP}:5000/hello`], false);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.once("close", resolve));
    assert.equal(code, 0);
    assert.equal(out, `Hello version: v1, instance: ${hello.metadata.name}\n`);
  });

  it("returns exit codes and stdin through WebSocket exec", async () => {
    const sleep = await readyPod(c1, "sample", "app=sleep");
    const failed = await wsExec(base, "sample", sleep.metadata.name ?? "", ["sh", "-c", "echo oops >&2; exit 3"]);
    assert.equal(failed.stderr, "oops\n");
    assert.equal(failed.status.status, "Failure");
    assert.equal(failed.status.details?.causes?.[0]?.message, "3");
    const echoed = await wsExec(base, "sample", sleep.metadata.name ?? "", ["cat"], "from stdin\n");
    assert.equal(echoed.stdout, "from stdin\n");
    assert.equal(echoed.status.status, "Success");
    const env = await wsExec(base, "sample", sleep.metadata.name ?? "", [
      "sh",
      "-c",
      "cat /etc/resolv.conf; echo $HOSTNAME",
    ]);
    assert.match(env.stdout, /search sample\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
    assert.match(env.stdout, new RegExp(`${sleep.metadata.name}\\n$`));
    const token = await wsExec(base, "sample", sleep.metadata.name ?? "", [
      "cat",
      "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
    ]);
    assert.equal(token.stdout, "sample");
  });

  it("serves container logs, with tailLines", async () => {
    const hello = await readyPod(c1, "sample", "app=helloworld");
    const url = `${base}/api/v1/namespaces/sample/pods/${hello.metadata.name}/log?container=helloworld`;
    const all = await (await fetch(url)).text();
    assert.match(all, /helloworld v1 listening on port 5000\n/);
    const tail = await (await fetch(`${url}&tailLines=1`)).text();
    assert.equal(tail, all.split("\n").slice(-2).join("\n"));
    const previous = await fetch(`${url}&previous=true`);
    assert.equal(previous.status, 400);
  });

  it("reports an unknown image as ErrImagePull/ImagePullBackOff with what a local cluster can run", async () => {
    await c1.client.create(Resources.pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "nginx", namespace: "sample" },
      spec: { containers: [{ name: "nginx", image: "nginx:1.27" }] },
    });
    const waiting = await waitFor("the nginx pod to report the image", async () => {
      const p = await c1.client.get(Resources.pods, "sample", "nginx");
      const w = statusOf(p).containerStatuses?.[0]?.state.waiting;
      return w && /ErrImagePull|ImagePullBackOff/.test(w.reason) ? w : undefined;
    });
    assert.match(waiting.message ?? "", /image "nginx:1\.27" is not available on a local cluster.*helloworld/);
    const events = await c1.client.list(Resources.events, { namespace: "sample" });
    assert.ok(
      events.items.some(
        (e) =>
          e.reason === "Failed" &&
          String(e.message).includes("nginx:1.27") &&
          (e.involvedObject as { name: string }).name === "nginx",
      ),
    );
  });

  it("removes a deleted pod's namespace and veth, after the grace period", async () => {
    const w = c1.node.worker("sample", "nginx");
    const netns = w?.netns;
    const ip = w?.podIP;
    assert.ok(netns && ip);
    assert.ok(PodNetworks.exists(netns));
    await c1.client.delete(Resources.pods, "sample", "nginx");
    await waitFor("the nginx pod to be gone", async () => {
      try {
        await c1.client.get(Resources.pods, "sample", "nginx");
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(PodNetworks.exists(netns), false);
    assert.equal((await listLinks()).includes(vethNames(ip).host), false);
  });

  it("leaves no namespace, link or allocation of the test after teardown", async () => {
    const bridge = c1.network.bridge;
    const ranges = [c1.network.podCidr, c2.network.podCidr];
    await c1.close();
    await c2.close();
    const left = (await listNetns()).filter((n) => tags.some((t) => n.startsWith(t)));
    assert.deepEqual(left, []);
    const links = await listLinks();
    assert.equal(links.includes(bridge), false);
    assert.equal(links.includes(c1.network.dummy), false);
    for (const cidr of ranges) {
      const base3 = cidr.split(".").slice(0, 3).join(".");
      for (let i = 2; i < 10; i++) assert.equal(links.includes(vethNames(`${base3}.${i}`).host), false);
    }
    assert.equal(lookupCluster({ home, clusterName: "cluster1" }), undefined);
    assert.equal(lookupCluster({ home, clusterName: "cluster2" }), undefined);
  });
});
