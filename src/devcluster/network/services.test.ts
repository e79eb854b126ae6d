import assert from "node:assert/strict";
import { it } from "node:test";
import { silentLogger, waitFor } from "../../base/index.js";
import { Resources } from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { ServiceTable } from "./services.js";

it("the service table resolves ClusterIP and headless Services and lists ready endpoints by port name", async (t) => {
  const api = new LocalApi({ serviceCidr: "10.201.250.0/24", clusterName: "svc-test", log: silentLogger });
  await api.start();
  const ac = new AbortController();
  t.after(async () => {
    ac.abort();
    await api.close();
  });
  const client = api.client();
  await client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
  const svc = await client.create(Resources.services, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "helloworld", namespace: "sample" },
    spec: { ports: [{ name: "http", port: 5000 }] },
  });
  await client.create(Resources.services, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "db", namespace: "sample" },
    spec: { clusterIP: "None", ports: [{ name: "tcp", port: 5432 }] },
  });
  const slice = (service: string, port: string, n: number, endpoints: [string, boolean][]) => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `${service}-x`, namespace: "sample", labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    ports: [{ name: port, port: n, protocol: "TCP" }],
    endpoints: endpoints.map(([ip, ready]) => ({ addresses: [ip], conditions: { ready } })),
  });
  await client.create(
    Resources.endpointslices,
    slice("helloworld", "http", 5000, [
      ["10.200.1.2", true],
      ["10.200.1.3", false],
    ]),
  );
  await client.create(
    Resources.endpointslices,
    slice("db", "tcp", 5432, [
      ["10.200.1.7", true],
      ["10.200.1.8", true],
    ]),
  );
  const table = new ServiceTable(client);
  await table.start(ac.signal);
  const clusterIP = (svc.spec as { clusterIP: string }).clusterIP;
  assert.match(clusterIP, /^10\.201\.250\.\d+$/);
  await waitFor("both slices", () => table.slices.list().length === 2);
  assert.deepEqual(table.lookup("helloworld.sample.svc.cluster.local"), { found: true, addresses: [clusterIP] });
  assert.deepEqual(table.lookup("db.sample.svc.cluster.local"), {
    found: true,
    addresses: ["10.200.1.7", "10.200.1.8"],
  });
  assert.deepEqual(table.lookup("10-200-1-2.sample.pod.cluster.local"), { found: true, addresses: ["10.200.1.2"] });
  assert.deepEqual(table.lookup("nope.sample.svc.cluster.local"), { found: false });
  assert.deepEqual(table.lookup("helloworld.sample"), { found: false });
  const hw = table.get("sample", "helloworld");
  assert.ok(hw);
  assert.deepEqual(table.endpoints(hw, "http"), [{ ip: "10.200.1.2", port: 5000 }]);
  assert.deepEqual(table.endpoints(hw, "grpc"), []);
});
