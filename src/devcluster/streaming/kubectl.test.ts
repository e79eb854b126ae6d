/**
 * exec, logs and port-forward with the machine's kubectl (1.32) against the HTTPS API server
 * and this node's PodStreams: WebSocket and SPDY, stdin, exit codes. Needs root.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger, waitFor } from "../../base/index.js";
import { type KubeObject, Resources } from "../api/types.js";
import { type HarnessCluster, startHarnessCluster } from "../node/harness.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(
  kubeconfig: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      "kubectl",
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig, ...opts.env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? "");
  });
}

const pod = (name: string, container: Record<string, unknown>): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "sample", labels: { app: name } },
  spec: { terminationGracePeriodSeconds: 0, containers: [container] },
});

describe("kubectl exec, logs and port-forward", { timeout: 180_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), "isth-kubectl-test-"));
  let c: HarnessCluster;
  let kc = "";
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  const transports = (kind: string) =>
    lines
      .filter((l) => l.includes("stream opened") && l.includes(`kind=${kind}`))
      .map((l) => /transport="([^"]+)"/.exec(l)?.[1] ?? /transport=(\S+)/.exec(l)?.[1]);

  before(async () => {
    c = await startHarnessCluster({ home, name: "kubectl1", network: `kc-${process.pid}`, http: true, log });
    kc = c.kubeconfig ?? "";
    await c.client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
    await c.client.create(
      Resources.pods,
      pod("sleep", { name: "sleep", image: "curlimages/curl", command: ["/bin/sleep", "infinity"] }),
    );
    await c.client.create(
      Resources.pods,
      pod("hello", {
        name: "helloworld",
        image: "docker.io/istio/examples-helloworld-v2:1.0",
        readinessProbe: { tcpSocket: { port: 5000 }, periodSeconds: 1 },
      }),
    );
    for (const name of ["sleep", "hello"]) {
      await waitFor(
        `pod ${name} ready`,
        async () => {
          const p = await c.client.get(Resources.pods, "sample", name);
          const conds = (p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions;
          return conds?.some((x) => x.type === "Ready" && x.status === "True");
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    }
  });

  after(async () => {
    await c?.close();
    rmSync(home, { recursive: true, force: true });
  });

  for (const [transport, env, wire] of [
    ["WebSocket", {}, "websocket v5.channel.k8s.io"],
    ["SPDY", { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: "false" }, "spdy v4.channel.k8s.io"],
  ] as const) {
    it(`exec over ${transport}: output, stderr and the exit code`, async () => {
      lines.length = 0;
      const r = await kubectl(
        kc,
        ["exec", "-n", "sample", "sleep", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        {
          env,
        },
      );
      assert.equal(r.stdout, "out\n");
      assert.match(r.stderr, /err/);
      assert.equal(r.code, 3);
      assert.deepEqual(transports("exec"), [wire]);
    });

    it(`exec -i over ${transport}: stdin reaches the command`, async () => {
      const r = await kubectl(kc, ["exec", "-i", "-n", "sample", "sleep", "--", "cat"], { env, input: "abc\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "abc\n");
    });
  }

  it("get pods shows READY counts; describe shows why an unknown image cannot run", async () => {
    const get = await kubectl(kc, ["get", "pods", "-n", "sample", "sleep", "--no-headers"]);
    assert.match(get.stdout, /^sleep\s+1\/1\s+Running\s+0\s/);
    await c.client.create(Resources.pods, pod("nginx", { name: "nginx", image: "nginx:1.27" }));
    const described = await waitFor(
      "describe to show the pull failure",
      async () => {
        const r = await kubectl(kc, ["describe", "pod", "-n", "sample", "nginx"]);
        return /Failed to pull image "nginx:1\.27"/.test(r.stdout) ? r.stdout : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.match(described, /Reason:\s+(ErrImagePull|ImagePullBackOff)/);
    assert.match(described, /not available on a local cluster/);
  });

  it("a pod reaches the API server with its in-cluster config (token, CA, KUBERNETES_SERVICE_HOST)", async () => {
    const script = [
      "sa=/var/run/secrets/kubernetes.io/serviceaccount",
      'curl -sS --cacert $sa/ca.crt -H "Authorization: Bearer $(cat $sa/token)" https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/$(cat $sa/namespace)/pods',
    ].join("; ");
    const r = await kubectl(kc, ["exec", "-n", "sample", "sleep", "--", "sh", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    // Authenticated as the pod's ServiceAccount, which RBAC does not let list pods.
    assert.match(r.stdout, /"reason":\s*"Forbidden"/);
    assert.match(r.stdout, /system:serviceaccount:sample:default/);
  });

  it("logs, with --tail", async () => {
    const all = await kubectl(kc, ["logs", "-n", "sample", "hello"]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /helloworld v2 listening on port 5000/);
    const tail = await kubectl(kc, ["logs", "-n", "sample", "hello", "--tail=1"]);
    assert.equal(tail.stdout, "helloworld v2 listening on port 5000\n");
  });

  for (const [transport, env, wire] of [
    ["WebSocket", { KUBECTL_PORT_FORWARD_WEBSOCKETS: "true" }, "spdy-over-websocket"],
    ["SPDY", { KUBECTL_PORT_FORWARD_WEBSOCKETS: "false" }, "spdy"],
  ] as const) {
    it(`port-forward over ${transport} reaches the pod's port`, async (t) => {
      lines.length = 0;
      const child = spawn("kubectl", ["port-forward", "-n", "sample", "pod/hello", ":5000"], {
        env: { ...process.env, KUBECONFIG: kc, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      t.after(() => child.kill("SIGKILL"));
      const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 5000/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once("exit", (code) => reject(new Error(`kubectl port-forward exited ${code}`)));
      });
      const res = await fetch(`http://127.0.0.1:${port}/hello`);
      assert.equal(await res.text(), "Hello version: v2, instance: hello\n");
      const again = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(await again.text(), "Helloworld is healthy");
      assert.deepEqual(transports("portforward"), [wire]);
    });
  }
});
