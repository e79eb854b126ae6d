// The readers of sample-checks.ts against the product's own renderers, so a changed column or
// label shows up here in seconds rather than minutes into test/guide.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { endpointRows as renderEndpointRows } from "../../src/cli/proxy-config.js";
import { table } from "../../src/cli/output.js";
import { RequestMetrics } from "../../src/proxy/stats/metrics.js";
import { countVersions, endpointRows, podRows, prometheusSeries, sumMatching, versionOf } from "./sample-checks.js";

const hello = "outbound|5000||helloworld.sample.svc.cluster.local";

describe("sample checks", () => {
  it("reads the wide proxy-config endpoint table as isthmus prints it", () => {
    const statuses = [
      {
        name: hello,
        hosts: [
          { address: "10.200.0.12:5000", health: "HEALTHY", clusterId: "cluster1", weight: 1 },
          { address: "10.200.1.7:5000", health: "HEALTHY", clusterId: "cluster2", weight: 1 },
        ],
      },
      { name: "BlackHoleCluster", hosts: [] },
    ];
    const out = table(
      ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER", "CLUSTER ID"],
      renderEndpointRows(statuses, true),
    );
    assert.deepEqual(endpointRows(out), [
      { endpoint: "10.200.0.12:5000", status: "HEALTHY", outlierCheck: "OK", cluster: hello, clusterId: "cluster1" },
      { endpoint: "10.200.1.7:5000", status: "HEALTHY", outlierCheck: "OK", cluster: hello, clusterId: "cluster2" },
    ]);
    assert.throws(() => endpointRows(table(["ENDPOINT", "STATUS"], [])), /unexpected proxy-config endpoint header/);
  });

  it("reads istio_requests_total series as the sidecar renders them, escaped values included", () => {
    const m = new RequestMetrics();
    const peer = { reporter: "destination", source_principal: "spiffe://cluster.local/ns/sample/sa/sleep" };
    m.recordRequest({ ...peer, source_cluster: "cluster2", response_code: "200" }, 3);
    m.recordRequest({ ...peer, source_cluster: "cluster2", response_code: "200" }, 4);
    m.recordRequest({ ...peer, source_cluster: "cluster1", response_code: "200" }, 4);
    m.recordRequest({ reporter: "destination", source_principal: 'a "quoted" one', response_code: "503" }, 1);
    const series = prometheusSeries(m.render(), "istio_requests_total");
    assert.equal(series.length, 3);
    assert.equal(sumMatching(series, { ...peer, source_cluster: "cluster2" }), 2);
    assert.equal(sumMatching(series, { reporter: "destination" }), 4);
    assert.equal(sumMatching(series, { source_principal: 'a "quoted" one' }), 1);
    assert.equal(sumMatching(series, { source_cluster: "cluster9" }), 0);
  });

  it("reads helloworld answers and kubectl's pod table", () => {
    const answers = [
      versionOf("Hello version: v1, instance: helloworld-v1-86f77cd7bd-cpxhv\n"),
      versionOf("Hello version: v2, instance: helloworld-v2-758dd55874-6x4t8"),
      versionOf("exit 7: curl: (7) Failed to connect"),
    ];
    assert.deepEqual([...countVersions(answers)].sort(), [
      ["failed", 1],
      ["v1", 1],
      ["v2", 1],
    ]);
    assert.deepEqual(
      podRows(
        "NAME                     READY   STATUS    RESTARTS   AGE\nsleep-5d4f9c7b8-abcde   2/2     Running   0          1m\n",
      ),
      [{ name: "sleep-5d4f9c7b8-abcde", ready: "2/2", status: "Running" }],
    );
  });
});
