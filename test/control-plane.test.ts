/**
 * Issue 4's "Done when" on two local clusters with real pods: `isthmus cluster create` twice on
 * one network, gRPC echo pods (answering with their pod name) behind Service `echo` in both,
 * the guide's `create-remote-secret | kubectl apply`, and cluster1's control plane (run here
 * with --kubeconfig, as outside any cluster). A proxyless gRPC client (@grpc/grpc-js-xds)
 * reaches pods in both clusters; removing the secret drops cluster2 within 1 s; adding it back
 * restores it; a broken kubeconfig is reported; a stopped remote API server keeps its endpoints.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import { envFrom, waitFor } from "../src/base/index.js";
import { ControlPlane, defaultXdsBackend } from "../src/discovery/index.js";
import { loadKubeConfig } from "../src/kube/index.js";
import { getClusterz, controlPlaneOptions, httpGet, proxylessGrpcClient, echoUntil } from "./support/control-plane.js";

const repo = fileURLToPath(new URL("..", import.meta.url));
const host = "echo.sample.svc.cluster.local";

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { env, cwd: repo, maxBuffer: 16 << 20, timeout: 120_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

const echoManifest = (script: string) => `
apiVersion: v1
kind: Namespace
metadata: {name: sample}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: sample, labels: {app: echo}}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 7070, targetPort: 7070}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: sample}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: curlimages/curl
        # No container engine: the curl image runs its command with the host's tools; here the
        # grpc-echo program of this checkout (see src/programs/grpc-echo.ts).
        command: ["${process.execPath}", "--import", "${import.meta.resolve("tsx")}", "${script}"]
        env: [{name: GRPC_ECHO_PORT, value: "7070"}]
        ports: [{containerPort: 7070}]
`;

describe("control plane on two local clusters with pods", { timeout: 300_000 }, () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let cp: ControlPlane;
  let client: grpc.Client;
  let secretYaml: string;
  const closers: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
  });

  const kubectl = (ctx: string, args: string[], input?: string) =>
    run("kubectl", ["--context", ctx, ...args], env, input);
  const isthmus = (args: string[]) => run(process.execPath, [join(repo, "bin/isthmus"), ...args], env);
  const monitoring = (path: string) => httpGet(cp.ports.monitoring, path);
  const clusterz = () => getClusterz(cp.ports.monitoring);
  const untilAnswers = (want: (a: Set<string>) => boolean) => echoUntil(client, want, { timeoutMs: 30_000 });

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "isthmus-cp-e2e-"));
    closers.push(() => rm(home, { recursive: true, force: true }));
    env = {
      ...process.env,
      ISTHMUS_HOME: home,
      KUBECONFIG: [join(home, "kubeconfig-cluster1"), join(home, "kubeconfig-cluster2")].join(":"),
    };
    const script = join(home, "grpc-echo.mjs");
    await writeFile(
      script,
      `import { runGrpcEcho } from ${JSON.stringify(join(repo, "src/programs/grpc-echo.ts"))};\nprocess.exit(await runGrpcEcho(process.env));\n`,
    );
    // Both clusters at once: creation is mostly waiting on each daemon.
    await Promise.all(
      ["cluster1", "cluster2"].map(async (name) => {
        // One kubeconfig file per cluster: two creations must not merge into one file at once.
        const file = join(home, `kubeconfig-${name}`);
        closers.push(() => isthmus(["cluster", "delete", name, "--kubeconfig", file]));
        await isthmus(["cluster", "create", name, "--network", "network1", "--kubeconfig", file]);
        await kubectl(name, ["apply", "-f", "-"], echoManifest(script));
      }),
    );
    await kubectl("cluster1", ["create", "namespace", "istio-system"]);
    // The guide's step, verbatim but for the command name.
    secretYaml = await isthmus(["x", "create-remote-secret", "--context=cluster2", "--name=cluster2"]);
    await kubectl("cluster1", ["apply", "-f", "-"], secretYaml);

    const kubeConfig = loadKubeConfig({
      env: envFrom({}),
      kubeconfigPath: join(home, "kubeconfig-cluster1"),
      context: "cluster1",
    });
    cp = new ControlPlane(controlPlaneOptions(kubeConfig, { env: { podName: "istiod-e2e" }, xds: defaultXdsBackend }));
    closers.push(() => cp.close(200));
    await cp.start();
    await cp.whenServing();
    await cp.whenReady();

    client = await proxylessGrpcClient({
      xdsPort: cp.ports.grpc,
      nodeIp: "10.200.0.250",
      target: `xds:///${host}:7070`,
      // A local subchannel pool: closing the client closes its connections to the pods at once
      // (the shared pool would keep them until the deleted clusters' addresses time out).
      channelOptions: { "grpc.use_local_subchannel_pool": 1 },
    });
    closers.push(() => client.close());
  });

  it("answers from pods in both clusters, spread across them", async () => {
    const { answers } = await untilAnswers((a) => [...a].some((x) => x.startsWith("echo-")) && a.size >= 2);
    assert.equal(answers.size, 2, `one pod per cluster: ${[...answers].join(", ")}`);
    assert.deepEqual(
      (await clusterz()).map((r) => [r.id, r.secretName, r.syncStatus]),
      [
        ["cluster1", "", "synced"],
        ["cluster2", "istio-system/istio-remote-secret-cluster2", "synced"],
      ],
    );
  });

  it("drops cluster2 within 1 s when the remote secret is deleted, and restores it when applied again", async () => {
    const before = (await untilAnswers((a) => a.size === 2)).answers;
    await kubectl("cluster1", ["delete", "secret", "-n", "istio-system", "istio-remote-secret-cluster2"]);
    const deletedAt = performance.now();
    const { answers } = await untilAnswers((a) => a.size === 1);
    const took = performance.now() - deletedAt;
    assert.ok(took < 1000, `cluster2's endpoints left the client after ${Math.round(took)} ms`);
    assert.ok(before.has([...answers][0] ?? ""));
    await kubectl("cluster1", ["apply", "-f", "-"], secretYaml);
    await untilAnswers((a) => a.size === 2);
  });

  it("reports a secret with a broken kubeconfig and changes nothing else", async () => {
    const broken = secretYaml.replaceAll("cluster2", "cluster3").replace(/token: .*/, "tokenFile: /etc/passwd");
    await kubectl("cluster1", ["apply", "-f", "-"], broken);
    const row = await waitFor("cluster3 in clusterz", async () => (await clusterz()).find((r) => r.id === "cluster3"));
    assert.equal(row.secretName, "istio-system/istio-remote-secret-cluster3");
    assert.equal(row.syncStatus, "failed");
    assert.match(row.error ?? "", /token file/);
    await untilAnswers((a) => a.size === 2);
  });

  it("keeps a stopped remote API server's endpoints and shows it in /debug/clusterz", async () => {
    await isthmus(["cluster", "stop", "cluster2"]);
    const row = await waitFor("cluster2's error in clusterz", async () =>
      (await clusterz()).find((r) => r.id === "cluster2" && r.error !== undefined),
    );
    assert.match(row.error ?? "", /cannot reach API server|connection to the API server lost/);
    const endpointz = JSON.parse((await monitoring("/debug/endpointz")).text) as Record<
      string,
      Record<string, Record<string, unknown[]>>
    >;
    assert.deepEqual(
      Object.keys(endpointz[host]?.grpc ?? {}),
      ["cluster1", "cluster2"],
      "cluster2's last endpoints are kept",
    );
    assert.equal((await monitoring("/ready")).status, 200);
  });
});
