import assert from "node:assert/strict";
import https from "node:https";
import tls from "node:tls";
import { describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { silentLogger, waitFor } from "../base/index.js";
import type { Clock } from "../registry/index.js";
import { controlPlaneOptions, httpGet as get } from "../../test/support/control-plane.js";
import { FakeApiServer } from "../../test/support/fake-apiserver.js";
import { Resources } from "../devcluster/api/types.js";
import { startTestApiServer } from "../devcluster/apiserver/http/testing.js";
import { ControlPlane } from "./control-plane.js";

class ManualClock implements Clock {
  readonly timers: { fn: () => void; ms: number }[] = [];
  setTimeout(fn: () => void, ms: number) {
    const t = { fn, ms };
    this.timers.push(t);
    return () => {
      this.timers.splice(this.timers.indexOf(t), 1);
    };
  }
}

const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c2, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: ${Buffer.from("x").toString("base64")}}}]
users: [{name: c2, user: {token: abc}}]
contexts: [{name: c2, context: {cluster: c2, user: c2}}]
current-context: c2
`;

describe("ControlPlane start-up", () => {
  it("opens xDS only once its own cluster has synced, and a remote that never syncs holds readiness only until its timeout", async (t) => {
    const own = new FakeApiServer();
    own.token = "right";
    await own.start();
    own.put("namespaces", { metadata: { name: "istio-system" } });
    own.put("secrets", {
      metadata: {
        name: "istio-remote-secret-cluster2",
        namespace: "istio-system",
        labels: { "istio/multiCluster": "true" },
      },
      data: { cluster2: Buffer.from(unreachableKubeconfig).toString("base64") },
    });
    const kc = new KubeConfig();
    kc.loadFromString(own.kubeconfig("own", "wrong"));
    const clock = new ManualClock();
    const cp = new ControlPlane(controlPlaneOptions(kc, { clock }));
    t.after(async () => {
      await cp.close(100);
      await own.stop();
    });
    await cp.start();
    const port = cp.ports.monitoring;

    // The own API server refuses the token: not synced, not ready, no xDS port, and /ready says why.
    const notReady = await waitFor("the 401 in /ready", async () => {
      const r = await get(port, "/ready");
      return r.status === 503 && /own cluster cluster1 not synced: .*401/.test(r.text) ? r : undefined;
    });
    assert.match(notReady.text, /not ready/);
    assert.equal(cp.ports.grpc, undefined);
    assert.match(
      JSON.stringify(JSON.parse((await get(port, "/debug/clusterz")).text)[0]),
      /"syncStatus":"syncing".*401/,
    );

    // The token is accepted from now on: the own cluster syncs and xDS opens.
    own.token = undefined;
    await cp.whenServing();
    assert.ok((cp.ports.grpc ?? 0) > 0);

    // cluster2's API server cannot be reached: still syncing, so not ready...
    await waitFor("cluster2 registered", () => clock.timers.length === 1);
    assert.equal(clock.timers[0]?.ms, 30_000);
    const r = await get(port, "/ready");
    assert.equal(r.status, 503);
    assert.match(r.text, /remote cluster cluster2 syncing/);

    // ...until PILOT_REMOTE_CLUSTER_TIMEOUT passes.
    clock.timers[0]?.fn();
    assert.equal((await get(port, "/ready")).status, 200);
    const row = JSON.parse((await get(port, "/debug/clusterz")).text)[1];
    assert.equal(row.id, "cluster2");
    assert.equal(row.secretName, "istio-system/istio-remote-secret-cluster2");
    assert.equal(row.syncStatus, "timeout");
    const metrics = (await get(port, "/metrics")).text;
    assert.match(metrics, /remote_cluster_sync_timeouts_total\{cluster="cluster2"\} 1/);
    assert.match(
      metrics,
      /istiod_remote_cluster_sync_status\{cluster="cluster2",cluster_type="remote",status="timeout"\} 1/,
    );
    assert.match(metrics, /isthmus_discovery_ready 1/);
  });

  it("refuses an unusable monitoring address with the flag's name", async () => {
    const kc = new KubeConfig();
    kc.loadFromString(unreachableKubeconfig);
    const cp = new ControlPlane({
      env: {
        clusterId: "c",
        namespace: "istio-system",
        podName: "",
        remoteClusterTimeoutMs: 0,
        insecureKubeconfigOptions: new Set(),
        network: "",
        debounceAfterMs: 100,
        debounceMaxMs: 100,
      },
      kubeConfig: kc,
      log: silentLogger,
      monitoringAddr: "15014",
      ca: false,
    });
    await assert.rejects(cp.start(), /--monitoringAddr "15014": expected host:port or :port/);
    await cp.close();
  });
});

describe("ControlPlane with its CA on a real API server", () => {
  it("serves xDS over TLS on 15012 and the injection webhook on 15017 with certificates from its CA, and patches the caBundle", async (t) => {
    const api = await startTestApiServer();
    t.after(() => api.close());
    const client = api.api.client();
    await client.create(Resources.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "istio-system" },
    });
    await client.create(Resources.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "sample", labels: { "istio-injection": "enabled" } },
    });
    await client.create(Resources.configmaps, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "istio-sidecar-injector", namespace: "istio-system" },
      data: {
        values: JSON.stringify({
          hub: "docker.io/isthmus",
          tag: "test",
          clusterId: "cluster1",
          network: "network1",
          meshId: "mesh1",
          trustDomain: "cluster.local",
          discoveryAddress: "istiod.istio-system.svc:15012",
          revision: "default",
        }),
      },
    });
    await client.create(Resources.mutatingwebhookconfigurations, {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: "istio-sidecar-injector" },
      webhooks: [
        {
          name: "namespace.sidecar-injector.istio.io",
          clientConfig: { service: { name: "istiod", namespace: "istio-system", path: "/inject", port: 443 } },
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          // Selects nothing in this test: the API server must not call a webhook it cannot reach.
          namespaceSelector: { matchLabels: { "no-such-label": "x" } },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
        },
      ],
    });
    const kc = new KubeConfig();
    kc.loadFromFile(await api.writeKubeconfig());
    const cp = new ControlPlane(
      controlPlaneOptions(kc, {
        grpcAddr: "",
        secureGrpcAddr: "127.0.0.1:0",
        webhookAddr: "127.0.0.1:0",
        ca: "cluster",
      }),
    );
    t.after(() => cp.close(100));
    await cp.start();
    await cp.whenServing();
    const root = await waitFor("the published root certificate", async () => {
      const cm = await client.get(Resources.configmaps, "istio-system", "istio-ca-root-cert").catch(() => undefined);
      return (cm?.data as Record<string, string> | undefined)?.["root-cert.pem"];
    });

    // 15012: TLS with a certificate for istiod's Service names, chaining to the root.
    const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const s = tls.connect(
        {
          host: "127.0.0.1",
          port: cp.ports.secureGrpc,
          ca: root,
          servername: "istiod.istio-system.svc",
          ALPNProtocols: ["h2"],
        },
        () => {
          resolve(s.getPeerCertificate());
          s.end();
        },
      );
      s.on("error", reject);
    });
    assert.match(peer.subjectaltname ?? "", /DNS:istiod\.istio-system\.svc/);

    // 15017: an AdmissionReview for a pod in an enabled namespace comes back with a patch.
    await waitFor("the webhook port", () => cp.ports.webhook);
    const review = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: "u-1",
        kind: { group: "", version: "v1", kind: "Pod" },
        namespace: "sample",
        operation: "CREATE",
        object: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "p", namespace: "sample" },
          spec: { containers: [{ name: "app", image: "x" }] },
        },
      },
    };
    const answer = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1",
          port: cp.ports.webhook,
          path: "/inject",
          method: "POST",
          ca: root,
          servername: "istiod.istio-system.svc",
          headers: { "content-type": "application/json" },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
          });
          res.on("end", () => resolve(text));
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(review));
    });
    const response = (JSON.parse(answer) as { response: { uid: string; allowed: boolean; patch?: string } }).response;
    assert.equal(response.uid, "u-1");
    assert.equal(response.allowed, true);
    assert.match(Buffer.from(response.patch ?? "", "base64").toString("utf8"), /istio-proxy/);

    // The webhook configuration is made to trust the CA.
    await waitFor("the caBundle", async () => {
      const mwc = await client.get(Resources.mutatingwebhookconfigurations, undefined, "istio-sidecar-injector");
      const hooks = mwc.webhooks as { clientConfig: { caBundle?: string } }[];
      return hooks[0]?.clientConfig.caBundle === Buffer.from(root).toString("base64");
    });
  });
});
