/**
 * Pod lifecycle on the node (root): init containers, env and volumes as the container sees
 * them, user switching, restarts with back-off, liveness probes, restartPolicy Never, and
 * deletion of a container that ignores SIGTERM.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../../base/index.js";
import { type KubeObject, Resources } from "../api/types.js";
import { type HarnessCluster, repoRoot, startHarnessCluster } from "./harness.js";
import { startNode } from "./node.js";
import { processExists } from "./process.js";
import type { PodStatus } from "./pod-types.js";

const curl = "curlimages/curl:8.16.0";
const statusOf = (p: KubeObject) => (p.status ?? {}) as Partial<PodStatus>;

function pod(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "life", labels: { app: name } }, spec };
}

describe("pod lifecycle", { timeout: 180_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), "isth-life-test-"));
  let c: HarnessCluster;

  const waitPod = (name: string, what: string, check: (p: KubeObject) => boolean) =>
    waitFor(
      `pod ${name}: ${what}`,
      async () => {
        const p = await c.client.get(Resources.pods, "life", name);
        return check(p) ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );

  before(async () => {
    c = await startHarnessCluster({
      home,
      name: "life1",
      network: `life-${process.pid}`,
      backoff: { initialMs: 300, maxMs: 1000 },
    });
    await c.client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "life" } });
  });

  after(async () => {
    await c?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it("runs init containers first and gives containers their env, volumes, user, working dir and hostname", async () => {
    await c.client.create(Resources.configmaps, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cfg", namespace: "life" },
      data: { greeting: "hello", "file.txt": "from configmap" },
    });
    await c.client.create(Resources.secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "sec", namespace: "life" },
      data: { password: Buffer.from("s3cret").toString("base64") },
    });
    const script = [
      "cat /data/init.txt",
      'echo "env $POD_NAME $GREETING $PASSWORD $EXPANDED $CPU_LIMIT"',
      "cat /etc/cfg/file.txt; echo",
      "cat /etc/sec/password; echo",
      "cat /etc/info/labels; echo",
      "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo",
      'echo "user $(id -u) dir $(pwd) host $(hostname)"',
      "exec sleep infinity",
    ].join("; ");
    await c.client.create(
      Resources.pods,
      pod("env", {
        initContainers: [
          {
            name: "init",
            image: curl,
            command: ["sh", "-c", "echo init ran > /data/init.txt"],
            volumeMounts: [{ name: "data", mountPath: "/data" }],
          },
        ],
        containers: [
          {
            name: "main",
            image: curl,
            command: ["sh", "-c", script],
            workingDir: "/tmp",
            securityContext: { runAsUser: 1337, runAsGroup: 1337 },
            env: [
              { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
              { name: "GREETING", valueFrom: { configMapKeyRef: { name: "cfg", key: "greeting" } } },
              { name: "PASSWORD", valueFrom: { secretKeyRef: { name: "sec", key: "password" } } },
              { name: "EXPANDED", value: "$(GREETING)-world" },
              { name: "CPU_LIMIT", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1m" } } },
            ],
            resources: { limits: { cpu: "250m" } },
            volumeMounts: [
              { name: "data", mountPath: "/data" },
              { name: "cfg", mountPath: "/etc/cfg" },
              { name: "sec", mountPath: "/etc/sec", readOnly: true },
              { name: "info", mountPath: "/etc/info" },
            ],
          },
        ],
        volumes: [
          { name: "data", emptyDir: {} },
          { name: "cfg", configMap: { name: "cfg" } },
          { name: "sec", secret: { secretName: "sec" } },
          { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
        ],
      }),
    );
    const p = await waitPod("env", "Running", (x) => statusOf(x).phase === "Running");
    const init = statusOf(p).initContainerStatuses?.[0]?.state;
    assert.ok(init && "terminated" in init && init.terminated.exitCode === 0 && init.terminated.reason === "Completed");
    const w = c.node.worker("life", "env");
    assert.ok(w);
    const log = await waitFor("the main container's output", () => {
      const text = readFileSync(w.logFiles("main").current, "utf8");
      return text.includes("dir /tmp") ? text : undefined;
    });
    assert.equal(
      log,
      [
        "init ran",
        "env env hello s3cret hello-world 250",
        "from configmap",
        "s3cret",
        'app="env"',
        "life",
        "user 1337 dir /tmp host env",
        "",
      ].join("\n"),
    );
  });

  it("restarts a crashing container with back-off and keeps the previous log", async () => {
    await c.client.create(
      Resources.pods,
      pod("crash", { containers: [{ name: "c", image: curl, command: ["sh", "-c", "echo run; exit 2"] }] }),
    );
    const p = await waitPod(
      "crash",
      "restarted twice",
      (x) => (statusOf(x).containerStatuses?.[0]?.restartCount ?? 0) >= 2,
    );
    const cs = statusOf(p).containerStatuses?.[0];
    assert.ok(cs);
    assert.ok("terminated" in cs.lastState && cs.lastState.terminated.exitCode === 2);
    const crashLoop = await waitPod("crash", "CrashLoopBackOff", (x) => {
      const s = statusOf(x).containerStatuses?.[0]?.state;
      return s !== undefined && "waiting" in s && s.waiting.reason === "CrashLoopBackOff";
    });
    assert.equal(statusOf(crashLoop).phase, "Running");
    const w = c.node.worker("life", "crash");
    assert.equal(readFileSync(w?.logFiles("c").previous ?? "", "utf8"), "run\n");
  });

  it("restarts a container whose liveness probe fails", async () => {
    await c.client.create(
      Resources.pods,
      pod("live", {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: "c",
            image: curl,
            command: ["sleep", "infinity"],
            livenessProbe: { exec: { command: ["false"] }, periodSeconds: 1, failureThreshold: 1 },
          },
        ],
      }),
    );
    await waitPod("live", "a restart", (x) => (statusOf(x).containerStatuses?.[0]?.restartCount ?? 0) >= 1);
  });

  it("holds readiness until the startup probe passes", async () => {
    await c.client.create(
      Resources.pods,
      pod("slow", {
        containers: [
          {
            name: "c",
            image: curl,
            command: ["sh", "-c", "sleep 3; touch /tmp/slow-started-$HOSTNAME; exec sleep infinity"],
            startupProbe: {
              exec: { command: ["sh", "-c", "test -f /tmp/slow-started-$HOSTNAME"] },
              periodSeconds: 1,
              failureThreshold: 30,
            },
          },
        ],
      }),
    );
    const running = await waitPod("slow", "Running", (x) => statusOf(x).phase === "Running");
    const early = statusOf(running).containerStatuses?.[0];
    assert.equal(early?.started, false);
    assert.equal(early?.ready, false);
    const ready = await waitPod("slow", "Ready", (x) => statusOf(x).containerStatuses?.[0]?.ready === true);
    assert.equal(statusOf(ready).containerStatuses?.[0]?.started, true);
    rmSync("/tmp/slow-started-slow", { force: true });
  });

  it("ends restartPolicy Never pods as Succeeded or Failed", async () => {
    await c.client.create(
      Resources.pods,
      pod("ok", { restartPolicy: "Never", containers: [{ name: "c", image: curl, command: ["true"] }] }),
    );
    await c.client.create(
      Resources.pods,
      pod("bad", { restartPolicy: "Never", containers: [{ name: "c", image: curl, command: ["sh", "-c", "exit 7"] }] }),
    );
    await waitPod("ok", "Succeeded", (x) => statusOf(x).phase === "Succeeded");
    const bad = await waitPod("bad", "Failed", (x) => statusOf(x).phase === "Failed");
    const st = bad.status as PodStatus;
    const state = st.containerStatuses[0]?.state;
    assert.ok(state && "terminated" in state && state.terminated.exitCode === 7 && state.terminated.reason === "Error");
  });

  it("kills a container that ignores SIGTERM after the grace period and removes the pod", async () => {
    await c.client.create(
      Resources.pods,
      pod("stubborn", {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: "c", image: curl, command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"] }],
      }),
    );
    await waitPod("stubborn", "Running", (x) => statusOf(x).phase === "Running");
    const netns = c.node.worker("life", "stubborn")?.netns;
    assert.ok(netns);
    await c.client.delete(Resources.pods, "life", "stubborn");
    await waitFor("the pod to be removed", async () => {
      try {
        await c.client.get(Resources.pods, "life", "stubborn");
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(c.node.worker("life", "stubborn"), undefined);
  });

  it("starts the store's pods again when a node starts after a stop", async (t) => {
    await c.client.create(
      Resources.pods,
      pod("again", { containers: [{ name: "c", image: curl, command: ["sleep", "infinity"] }] }),
    );
    await waitPod("again", "Running", (x) => statusOf(x).phase === "Running");
    const first = c.node.worker("life", "again")?.running("c")?.pid;
    assert.ok(first);
    await c.node.stop();
    assert.equal(processExists(first), false);
    const stateDir = mkdtempSync(join(tmpdir(), "isth-life-node2-"));
    const node2 = await startNode({
      client: c.client,
      clusterName: c.name,
      nodeName: "life1-control-plane",
      network: c.network,
      repoRoot,
      stateDir,
    });
    t.after(async () => {
      await node2.stop();
      rmSync(stateDir, { recursive: true, force: true });
    });
    const second = await waitFor("the pod to run again", () => node2.worker("life", "again")?.running("c")?.pid);
    assert.notEqual(second, first);
    await waitPod(
      "again",
      "Running on the new node",
      (x) => statusOf(x).phase === "Running" && statusOf(x).startTime !== undefined,
    );
  });
});
