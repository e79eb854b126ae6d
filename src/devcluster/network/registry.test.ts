import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { allocateCluster, lookupCluster, teardownCluster, vethNames } from "./cluster-network.js";
import { AllocationError, allocateInState, Registry, type RegistryState } from "./registry.js";

describe("allocation registry", () => {
  it("gives concurrent allocations from several processes' worth of callers distinct ranges and ports", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isth-reg-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const home = join(dir, "home");
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        allocateCluster({ home, clusterName: `c${i}`, network: i % 2 === 0 ? "a" : "b", registryDir: dir }),
      ),
    );
    const pods = new Set(results.map((r) => r.network.podCidr));
    const services = new Set(results.map((r) => r.network.serviceCidr));
    const ports = new Set(results.map((r) => r.network.apiPort));
    assert.equal(pods.size, 8);
    assert.equal(services.size, 8);
    assert.equal(ports.size, 8);
    const bridges = new Set(results.map((r) => r.network.bridge));
    assert.equal(bridges.size, 2, "clusters on one network share its bridge");
    assert.deepEqual(new Registry(dir).read().clusters[`${home}\u0000c0`]?.podIndex, 1);
    // Allocating again returns the same allocation.
    const again = await allocateCluster({ home, clusterName: "c3", network: "b", registryDir: dir });
    assert.deepEqual(again.network, results[3]?.network);
    assert.equal(lookupCluster({ home, clusterName: "c3", registryDir: dir })?.podCidr, results[3]?.network.podCidr);
  });

  it("lets go of the lock when a transaction ends, even if the holder then blocks its event loop", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isth-reg-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await new Registry(dir).transaction((state) => {
      state.networks.held = { key: "held", home: "/h", name: "held", index: 0 };
    });
    // A synchronous child that needs the lock: it could never get it if releasing needed our event loop.
    const script = `const { Registry } = await import(${JSON.stringify(new URL("./registry.ts", import.meta.url).href)});
      await new Registry(${JSON.stringify(dir)}).transaction((s) => { s.networks.child = { key: "child", home: "/h", name: "child", index: 1 }; });`;
    execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      timeout: 30_000,
      stdio: ["ignore", "ignore", "inherit"],
    });
    assert.deepEqual(Object.keys(new Registry(dir).read().networks).sort(), ["child", "held"]);
  });

  it("keeps two ISTHMUS_HOMEs with the same network name apart", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isth-reg-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const a = await allocateCluster({ home: "/h1", clusterName: "cluster1", registryDir: dir });
    const b = await allocateCluster({ home: "/h2", clusterName: "cluster1", registryDir: dir });
    assert.notEqual(a.network.networkCidr, b.network.networkCidr);
    assert.notEqual(a.network.clusterTag, b.network.clusterTag);
    assert.notEqual(a.network.bridge, b.network.bridge);
  });

  it("refuses a cluster owned by a live process and takes over one whose owner died", () => {
    const state: RegistryState = { networks: {}, clusters: {} };
    allocateInState(state, { home: "/h", clusterName: "c", networkName: "n", pid: process.pid });
    assert.throws(
      () => allocateInState(state, { home: "/h", clusterName: "c", networkName: "n", pid: process.pid + 1 }),
      (err: unknown) => err instanceof AllocationError && /already run by process/.test(err.message),
    );
    const dead = 2 ** 22 + 12345; // above pid_max's default, so never alive
    const s2: RegistryState = { networks: {}, clusters: {} };
    allocateInState(s2, { home: "/h", clusterName: "c", networkName: "n", pid: dead });
    const r = allocateInState(s2, { home: "/h", clusterName: "c", networkName: "n", pid: process.pid });
    assert.equal(r.previousOwnerDied, true);
    assert.equal(r.cluster.pid, process.pid);
  });

  it("refuses an API server port another cluster holds, naming it", () => {
    const state: RegistryState = { networks: {}, clusters: {} };
    const first = allocateInState(state, { home: "/h", clusterName: "a", networkName: "n", pid: 0 });
    assert.throws(
      () =>
        allocateInState(state, {
          home: "/h2",
          clusterName: "b",
          networkName: "n",
          pid: 0,
          apiPort: first.cluster.apiPort,
        }),
      (err: unknown) =>
        err instanceof AllocationError &&
        new RegExp(`port ${first.cluster.apiPort} is already used by cluster "a"`).test(err.message),
    );
  });

  it("runs out of pod ranges on a network with a message naming it", () => {
    const state: RegistryState = { networks: {}, clusters: {} };
    for (let i = 0; i < 15; i++) allocateInState(state, { home: "/h", clusterName: `c${i}`, networkName: "n", pid: 0 });
    assert.throws(
      () => allocateInState(state, { home: "/h", clusterName: "c15", networkName: "n", pid: 0 }),
      /network "n" already holds 15 clusters/,
    );
  });

  it("releases allocations on teardown, and the network with its last cluster", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isth-reg-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await allocateCluster({ home: "/h", clusterName: "x", registryDir: dir });
    await allocateCluster({ home: "/h", clusterName: "y", registryDir: dir });
    await teardownCluster({ home: "/h", clusterName: "x", registryDir: dir });
    assert.equal(Object.keys(new Registry(dir).read().networks).length, 1);
    await teardownCluster({ home: "/h", clusterName: "y", registryDir: dir });
    assert.deepEqual(new Registry(dir).read(), { networks: {}, clusters: {} });
  });
});

describe("kernel object names", () => {
  it("fit in 15 characters and start with isth for every pod address", () => {
    for (const ip of ["10.200.0.2", "10.200.255.254", "10.200.17.5"]) {
      const { host, peer } = vethNames(ip);
      assert.ok(host.length <= 15 && peer.length <= 15, host);
      assert.match(host, /^isthv[0-9a-f]{4}$/);
      assert.match(peer, /^isthp[0-9a-f]{4}$/);
    }
    assert.notEqual(vethNames("10.200.17.5").host, vethNames("10.200.18.5").host);
  });
  it("bridge and dummy names fit in 15 characters", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isth-reg-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { network } = await allocateCluster({
      home: "/h",
      clusterName: "a-very-long-cluster-name-of-32ch",
      registryDir: dir,
    });
    assert.ok(network.bridge.length <= 15 && network.bridge.startsWith("isth"));
    assert.ok(network.dummy.length <= 15 && network.dummy.startsWith("isth"));
  });
});
