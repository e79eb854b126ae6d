// The sidecar against the real xDS server: configuration from ADS, traffic to endpoints of two
// Kubernetes clusters over mutual TLS, endpoint removal, and serving on when the control plane goes.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { before, describe, it } from "node:test";
import type { MeshEndpoint, MeshService } from "../model/index.js";
import { silentLogger, waitFor } from "../base/index.js";
import { StaticServiceView } from "../xds/resources/static-view.js";
import { XdsServer } from "../xds/index.js";
import { workloadCert } from "./fixtures.test.js";
import { Sidecar } from "./sidecar.js";
import type { WorkloadCertificate } from "./tls/identity.js";

const cert = (spiffeId: string, kubeCluster: string) => workloadCert(spiffeId, kubeCluster);

const host = "helloworld.sample.svc.cluster.local";
const service: MeshService = {
  hostname: host,
  name: "helloworld",
  namespace: "sample",
  ports: [{ name: "http", port: 5000, protocol: "HTTP" }],
  clusterVips: new Map([
    ["cluster1", "10.201.0.20"],
    ["cluster2", "10.201.1.20"],
  ]),
  serviceAccounts: ["spiffe://cluster.local/ns/sample/sa/default"],
  clusterLocal: false,
};
const endpoint = (port: number, clusterId: string, version: string): MeshEndpoint => ({
  address: "127.0.0.1",
  port,
  servicePortName: "http",
  clusterId,
  network: "network1",
  locality: { region: "", zone: "", subZone: "" },
  labels: { app: "helloworld", version },
  serviceAccount: "spiffe://cluster.local/ns/sample/sa/default",
  tlsMode: "istio",
  workloadName: `helloworld-${version}`,
  namespace: "sample",
  podName: `helloworld-${version}-abc`,
  nodeName: `${clusterId}-node`,
  ready: true,
  terminating: false,
});

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(
        { host: "127.0.0.1", port, path: "/hello", headers: { host: "helloworld.sample:5000" }, agent: false },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => {
            body += d.toString();
          });
          res.on("end", () => resolve(`${res.statusCode} ${body}`));
        },
      )
      .on("error", reject);
  });
}

const ports = { outbound: 0, inbound: 0, admin: 0, health: 0, prometheus: 0 };

describe("Sidecar with the xDS server", () => {
  let helloCert: WorkloadCertificate;
  let sleepCert: WorkloadCertificate;
  before(async () => {
    helloCert = await cert("spiffe://cluster.local/ns/sample/sa/default", "cluster2");
    sleepCert = await cert("spiffe://cluster.local/ns/sample/sa/sleep", "cluster1");
  });

  async function helloworld(
    t: { after(fn: () => unknown): void },
    version: string,
    clusterId: string,
    xdsPort: number,
  ) {
    const app = http.createServer((_req, res) =>
      res.end(`Hello version: ${version}, instance: helloworld-${version}-abc\n`),
    );
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    const sidecar = new Sidecar({
      workload: {
        podName: `helloworld-${version}-abc`,
        namespace: "sample",
        workloadName: `helloworld-${version}`,
        clusterId,
        serviceAccount: "default",
        trustDomain: "cluster.local",
      },
      node: {
        id: `sidecar~127.0.0.1~helloworld-${version}-abc.sample~sample.svc.cluster.local`,
        metadata: { CLUSTER_ID: clusterId, NAMESPACE: "sample" },
      },
      discoveryAddress: `127.0.0.1:${xdsPort}`,
      certificates: async () => helloCert,
      ports,
      listenHost: "127.0.0.1",
      fixedInboundPort: appPort,
      log: silentLogger,
    });
    await sidecar.start();
    t.after(() => sidecar.destroy());
    return sidecar.ports.inbound;
  }

  it("balances across both clusters, drops removed endpoints, and keeps serving without the control plane", async (t) => {
    let view = new StaticServiceView([{ service, endpoints: [] }]);
    const xds = new XdsServer({
      view: () => view,
      clusterId: "cluster1",
      debounceAfterMs: 10,
      debounceMaxMs: 100,
      log: silentLogger,
    });
    const xdsPort = await xds.listen({ host: "127.0.0.1", port: 0 });
    t.after(() => xds.close(0));

    const v1 = await helloworld(t, "v1", "cluster1", xdsPort);
    const v2 = await helloworld(t, "v2", "cluster2", xdsPort);
    view = new StaticServiceView([
      { service, endpoints: [endpoint(v1, "cluster1", "v1"), endpoint(v2, "cluster2", "v2")] },
    ]);
    xds.pushRequest({ full: true, reason: "test" });

    const sleep = new Sidecar({
      workload: {
        podName: "sleep-abc",
        namespace: "sample",
        workloadName: "sleep",
        clusterId: "cluster1",
        serviceAccount: "sleep",
        trustDomain: "cluster.local",
      },
      node: {
        id: "sidecar~127.0.0.9~sleep-abc.sample~sample.svc.cluster.local",
        metadata: { CLUSTER_ID: "cluster1", NAMESPACE: "sample" },
      },
      discoveryAddress: `127.0.0.1:${xdsPort}`,
      certificates: async () => sleepCert,
      ports,
      listenHost: "127.0.0.1",
      fixedOutboundDestination: { address: "10.201.0.20", port: 5000 },
      log: silentLogger,
    });
    await sleep.start();
    t.after(() => sleep.destroy());
    await waitFor("the sleep sidecar to be ready", () => sleep.readiness().ready, {
      timeoutMs: 10_000,
      intervalMs: 20,
    });

    const answers = await Promise.all(Array.from({ length: 10 }, () => get(sleep.ports.outbound)));
    assert.ok(
      answers.every((a) => a.startsWith("200 ")),
      answers.join("|"),
    );
    assert.ok(answers.some((a) => a.includes("v1")) && answers.some((a) => a.includes("v2")), answers.join("|"));

    const ready = await fetch(`http://127.0.0.1:${sleep.ports.health}/healthz/ready`);
    assert.equal(ready.status, 200);
    const clusters = (await (await fetch(`http://127.0.0.1:${sleep.ports.admin}/clusters?format=json`)).json()) as {
      cluster_statuses: { name: string; hosts: { clusterId: string }[] }[];
    };
    const hw = clusters.cluster_statuses.find((c) => c.name === `outbound|5000||${host}`);
    assert.deepEqual(hw?.hosts.map((h) => h.clusterId).sort(), ["cluster1", "cluster2"]);

    // cluster2's endpoint goes (its remote secret was removed): only v1 answers.
    view = view.withEndpoints(host, [endpoint(v1, "cluster1", "v1")]);
    xds.pushRequest({ full: false, edsHostnames: new Set([host]) });
    await waitFor(
      "cluster2's endpoint to leave the sidecar",
      () => (sleep.runtime.config.endpoints.get(`outbound|5000||${host}`)?.length ?? 0) === 1,
      {
        timeoutMs: 2000,
        intervalMs: 10,
      },
    );
    for (let i = 0; i < 4; i++) assert.match(await get(sleep.ports.outbound), /^200 Hello version: v1/);

    // The control plane goes away: the last good configuration keeps serving.
    await xds.close(0);
    for (let i = 0; i < 3; i++) assert.match(await get(sleep.ports.outbound), /^200 Hello version: v1/);
  });

  it("names the CA's refusal in /healthz/ready while it has no certificate", async (t) => {
    const refusal =
      'UNAUTHENTICATED: client claims to be in cluster "cluster9", but we only know about local cluster "cluster1"';
    let asked = 0;
    const sidecar = new Sidecar({
      workload: {
        podName: "sleep-abc",
        namespace: "sample",
        workloadName: "sleep",
        clusterId: "cluster9",
        serviceAccount: "sleep",
        trustDomain: "cluster.local",
      },
      node: { id: "sidecar~127.0.0.9~sleep-abc.sample~sample.svc.cluster.local", metadata: { CLUSTER_ID: "cluster9" } },
      discoveryAddress: "127.0.0.1:1",
      certificates: async () => {
        asked++;
        throw new Error(refusal);
      },
      ports,
      listenHost: "127.0.0.1",
      log: silentLogger,
    });
    // start() waits for a first certificate, which never comes: the admin ports are up before that.
    const started = sidecar.start();
    started.catch(() => {});
    t.after(() => sidecar.destroy());
    await waitFor("a refused certificate request", () => asked > 0 && (sidecar.ports.health ?? 0) > 0, { timeoutMs: 5000 });
    const ready = await fetch(`http://127.0.0.1:${sidecar.ports.health}/healthz/ready`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /waiting for a workload certificate; the CA said: .*cluster9/);
  });
});
