import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterRows, endpointRows, listenerRows } from "./proxy-config.js";
import { proxyImageVersions, proxyName, statusRows } from "./proxy-status.js";
import { podRef } from "./proxy-views.js";

describe("proxy views", () => {
  it("reads <pod>.<namespace>", () => {
    assert.deepEqual(podRef("sleep-abc.sample"), { pod: "sleep-abc", namespace: "sample" });
    assert.deepEqual(podRef("sleep-abc", "dev"), { pod: "sleep-abc", namespace: "dev" });
  });

  it("lists endpoints in istioctl's columns, with the Kubernetes cluster when wide", () => {
    const statuses = [
      {
        name: "outbound|5000||helloworld.sample.svc.cluster.local",
        hosts: [
          { address: "10.200.2.5:5000", health: "HEALTHY", clusterId: "cluster2", weight: 1, outlierCheck: "FAILED" },
          { address: "10.200.1.5:5000", health: "HEALTHY", clusterId: "cluster1", weight: 1 },
        ],
      },
    ];
    assert.deepEqual(endpointRows(statuses, true), [
      ["10.200.1.5:5000", "HEALTHY", "OK", "outbound|5000||helloworld.sample.svc.cluster.local", "cluster1"],
      ["10.200.2.5:5000", "HEALTHY", "FAILED", "outbound|5000||helloworld.sample.svc.cluster.local", "cluster2"],
    ]);
    assert.equal(endpointRows(statuses, false)[0]?.length, 4);
  });

  it("splits Envoy cluster names and listener chains", () => {
    const dump = {
      certificate: null,
      configs: [
        {
          typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
          versionInfo: "1",
          resources: [
            { name: "outbound|5000||helloworld.sample.svc.cluster.local", type: "EDS" },
            { name: "BlackHoleCluster", type: "STATIC" },
          ],
        },
        {
          typeUrl: "type.googleapis.com/envoy.config.listener.v3.Listener",
          versionInfo: "1",
          resources: [
            {
              name: "0.0.0.0_5000",
              address: { socketAddress: { address: "0.0.0.0", portValue: 5000 } },
              filterChains: [{ filters: [{ typedConfig: { rds: { routeConfigName: "5000" } } }] }],
            },
          ],
        },
      ],
    };
    assert.deepEqual(clusterRows(dump), [
      ["helloworld.sample.svc.cluster.local", "5000", "-", "outbound", "EDS", "-"],
      ["BlackHoleCluster", "-", "-", "-", "STATIC", "-"],
    ]);
    assert.deepEqual(listenerRows(dump), [["0.0.0.0", "5000", "ALL", "Route: 5000"]]);
  });

  it("shows each proxy's per-type sync state", () => {
    assert.equal(proxyName("sidecar~10.0.0.5~sleep-abc.sample~sample.svc.cluster.local"), "sleep-abc.sample");
    const rows = statusRows(
      [
        {
          proxyId: "sidecar~10.0.0.5~sleep-abc.sample~sample.svc.cluster.local",
          clusterId: "cluster1",
          types: [
            { type: "CDS", status: "SYNCED" },
            { type: "LDS", status: "SYNCED" },
            { type: "EDS", status: "STALE" },
          ],
        },
        {
          proxyId: "sidecar~10.0.0.6~helloworld-v1-abc.sample~sample.svc.cluster.local",
          clusterId: "cluster1",
          types: [],
          metadata: { ISTIO_VERSION: "1.24.1" },
        },
      ],
      "istiod-1",
      proxyImageVersions([
        {
          metadata: { name: "sleep-abc", namespace: "sample" },
          spec: {
            containers: [
              { name: "sleep", image: "curlimages/curl" },
              { name: "istio-proxy", image: "docker.io/istio/proxyv2:1.24.0" },
            ],
          },
        },
      ]),
    );
    assert.deepEqual(rows, [
      ["helloworld-v1-abc.sample", "cluster1", "NOT SENT", "NOT SENT", "NOT SENT", "NOT SENT", "istiod-1", "1.24.1"],
      ["sleep-abc.sample", "cluster1", "SYNCED", "SYNCED", "STALE", "NOT SENT", "istiod-1", "1.24.0"],
    ]);
  });
});
