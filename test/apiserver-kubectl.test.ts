/**
 * The local API server judged by the machine's real kubectl (1.32 via the dispatcher, chosen by
 * our /version): the guide's commands against an in-process server with the real store, auth
 * and controllers, over HTTPS with a bearer token, from a fresh HOME (empty discovery cache).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { WebSocketServer } from "ws";
import type { PodStreams } from "../src/devcluster/api/plugins.js";
import { Resources } from "../src/devcluster/api/types.js";
import { type TestApiServer, startTestApiServer } from "../src/devcluster/apiserver/http/testing.js";

// /work/shared sits beside the checkout (CI too: <clone>/../shared/).
const samples = fileURLToPath(new URL("../../shared/samples/", import.meta.url));
const helloworld = join(samples, "helloworld.yaml");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let server: TestApiServer;
let env: NodeJS.ProcessEnv;

// Stands in for the node: answers exec over WebSocket (v5.channel.k8s.io) by echoing what it was
// handed, so the test sees exactly what the API server passed on after authorizing.
const wss = new WebSocketServer({
  noServer: true,
  handleProtocols: (protocols) => (protocols.has("v5.channel.k8s.io") ? "v5.channel.k8s.io" : false),
});
const podStreams: PodStreams = {
  upgrade(kind, pod, query, req, socket, head) {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const line = `${kind} ${pod.metadata.namespace}/${pod.metadata.name} ${query.getAll("command").join(" ")}\n`;
      ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(line)]));
      ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify({ metadata: {}, status: "Success" }))]));
      ws.close(1000);
    });
  },
  async logs(pod, query, res) {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`logs of ${pod.metadata.name} container=${query.get("container") ?? ""}\n`);
  },
};

function kubectl(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile("kubectl", args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await kubectl(args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  // kubectl warns on stderr when it cannot use the OpenAPI documents to compute patches.
  assert.doesNotMatch(r.stderr, /warning|error/i, `kubectl ${args.join(" ")} printed:\n${r.stderr}`);
  return r.stdout;
}

describe("kubectl against the local API server", () => {
  before(async () => {
    server = await startTestApiServer({ controllers: true, podStreams });
    const home = join(server.dir, "home");
    await mkdir(home);
    env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: await server.writeKubeconfig() };
  });
  after(async () => {
    await server?.close();
    wss.close();
  });

  test("version reports a 1.32 server, so the dispatcher runs kubectl 1.32", async () => {
    const out = await ok(["version", "-o", "json"]);
    const v = JSON.parse(out) as { serverVersion: { gitVersion: string }; clientVersion: { gitVersion: string } };
    assert.match(v.serverVersion.gitVersion, /^v1\.32\./);
    assert.match(v.clientVersion.gitVersion, /^v1\.32\./);
  });

  test("create ns, label it, get it with --show-labels", async () => {
    assert.match(await ok(["create", "ns", "sample"]), /^namespace\/sample created/);
    assert.match(await ok(["label", "ns", "sample", "istio-injection=enabled"]), /namespace\/sample labeled/);
    const out = await ok(["get", "ns", "sample", "--show-labels"]);
    const [head, row] = out.trim().split("\n");
    assert.match(head ?? "", /^NAME\s+STATUS\s+AGE\s+LABELS$/);
    assert.match(row ?? "", /^sample\s+Active\s+\d+s\s+.*istio-injection=enabled/);
  });

  test("kubectl's typed clients write protobuf: create configmap, secret, deployment are decoded", async () => {
    assert.match(
      await ok(["create", "configmap", "cfg", "-n", "sample", "--from-literal=k=v"]),
      /configmap\/cfg created/,
    );
    assert.match(
      await ok(["create", "secret", "generic", "sec", "-n", "sample", "--from-literal=p=q"]),
      /secret\/sec created/,
    );
    assert.match(
      await ok(["create", "deployment", "web", "-n", "sample", "--image=nginx", "--port=80", "--replicas=0"]),
      /deployment\.apps\/web created/,
    );
    const out = await ok([
      "get",
      "deploy",
      "web",
      "-n",
      "sample",
      "-o",
      "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}",
    ]);
    assert.equal(out, "0 nginx 80");
    assert.equal(
      await ok(["get", "secret", "sec", "-n", "sample", "-o", "jsonpath={.data.p}"]),
      Buffer.from("q").toString("base64"),
    );
  });

  test("apply the guide's helloworld, then again: unchanged", async () => {
    assert.match(
      await ok(["apply", "-f", helloworld, "-l", "service=helloworld", "-n", "sample"]),
      /^service\/helloworld created/,
    );
    assert.match(
      await ok(["apply", "-f", helloworld, "-l", "version=v1", "-n", "sample"]),
      /^deployment\.apps\/helloworld-v1 created/,
    );
    const dep = JSON.parse(await ok(["get", "deployment", "helloworld-v1", "-n", "sample", "-o", "json"])) as {
      spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
      metadata: { annotations: Record<string, string> };
    };
    assert.equal(dep.spec.replicas, 1);
    assert.equal(dep.spec.template.spec.containers[0]?.image, "registry.istio.io/release/examples-helloworld-v1:1.0");
    assert.ok(dep.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]);
    assert.match(
      await ok(["apply", "-f", helloworld, "-l", "service=helloworld", "-n", "sample"]),
      /^service\/helloworld unchanged/,
    );
    assert.match(
      await ok(["apply", "-f", helloworld, "-l", "version=v1", "-n", "sample"]),
      /^deployment\.apps\/helloworld-v1 unchanged/,
    );
  });

  test("apply -f - from stdin: a changed replica count and port become a strategic merge patch", async () => {
    const changed = (await readFile(helloworld, "utf8"))
      .replace("replicas: 1", "replicas: 2")
      .replace("containerPort: 5000", "containerPort: 5001");
    assert.match(
      await ok(["apply", "-f", "-", "-l", "version=v1", "-n", "sample"], changed),
      /^deployment\.apps\/helloworld-v1 configured/,
    );
    const out = await ok([
      "get",
      "deploy",
      "helloworld-v1",
      "-n",
      "sample",
      "-o",
      "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[*].containerPort}",
    ]);
    // The merge key (containerPort) replaces 5000 by 5001 instead of appending to the list.
    assert.equal(out, "2 5001");
  });

  test("apply --server-side is served too", async () => {
    const out = await ok(["apply", "--server-side", "-f", helloworld, "-l", "version=v2", "-n", "sample"]);
    assert.match(out, /^deployment\.apps\/helloworld-v2 serverside-applied/);
  });

  test("get svc -o jsonpath gives a ClusterIP from the service range", async () => {
    const ip = await ok(["get", "svc", "-n", "sample", "-o", "jsonpath={.items[0].spec.clusterIP}"]);
    assert.match(ip, /^10\.201\.251\.\d+$/);
    const table = await ok(["get", "svc", "-n", "sample"]);
    assert.match(table, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\n/);
    assert.match(table, /\nhelloworld\s+ClusterIP\s+10\.201\.251\.\d+\s+<none>\s+5000\/TCP\s+\d+s\n/);
  });

  test("get pods -l app=helloworld shows the controllers' pod with kubectl's columns", async () => {
    // The ReplicaSet controller creates the pod; no node runs it, so it stays Pending.
    await ok(["wait", "--for=create", "pod", "-l", "app=helloworld", "-n", "sample", "--timeout=30s"]);
    const out = await ok(["get", "pods", "-n", "sample", "-l", "app=helloworld"]);
    assert.match(out, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    assert.match(out, /\nhelloworld-v1-[a-z0-9]+-[a-z0-9]{5}\s+0\/1\s+Pending\s+0\s+\d+s\n/);
  });

  test("describe svc lists its events section; get -o yaml round-trips", async () => {
    const out = await ok(["describe", "svc", "helloworld", "-n", "sample"]);
    assert.match(out, /^Name:\s+helloworld$/m);
    assert.match(out, /^Events:/m);
    assert.match(await ok(["get", "svc", "helloworld", "-n", "sample", "-o", "yaml"]), /^kind: Service$/m);
  });

  test("auth can-i answers through SelfSubjectAccessReview, also for an impersonated service account", async () => {
    assert.equal((await ok(["auth", "can-i", "create", "pods", "-n", "sample"])).trim(), "yes");
    const r = await kubectl([
      "auth",
      "can-i",
      "create",
      "pods",
      "-n",
      "sample",
      "--as=system:serviceaccount:sample:nobody",
    ]);
    assert.equal(r.stdout.trim(), "no");
    assert.equal(r.code, 1);
  });

  test("exec and logs are handed to the node's PodStreams after authorization", async () => {
    await server.api.client().create(Resources.pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "shell", namespace: "sample" },
      spec: { containers: [{ name: "main", image: "curlimages/curl" }] },
    });
    assert.equal(await ok(["exec", "shell", "-n", "sample", "--", "echo", "hi"]), "exec sample/shell echo hi\n");
    assert.equal(await ok(["logs", "shell", "-n", "sample"]), "logs of shell container=main\n");
    const denied = await kubectl([
      "exec",
      "shell",
      "-n",
      "sample",
      "--as=system:serviceaccount:sample:nobody",
      "--",
      "id",
    ]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/);
  });

  test("delete ns waits until the namespace controller has emptied and removed it", async () => {
    assert.match(await ok(["delete", "ns", "sample", "--timeout=60s"]), /namespace "sample" deleted/);
    const r = await kubectl(["get", "ns", "sample"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /namespaces "sample" not found/);
  });
});
