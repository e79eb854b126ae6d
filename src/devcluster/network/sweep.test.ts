/**
 * Sweeping after a crash (root): what a dead owner of this cluster left goes; another cluster's
 * namespace on the same network stays; teardown then removes the network.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import {
  addServiceIp,
  allocateCluster,
  ensureNetwork,
  lookupCluster,
  PodNetworks,
  sweep,
  teardownCluster,
} from "./cluster-network.js";
import { linkAddresses, listLinks } from "./exec.js";

it("sweeps a crashed run of this cluster and nothing of another cluster", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "isth-sweep-test-"));
  const network = `sweep-${process.pid}`;
  t.after(async () => {
    await teardownCluster({ home, clusterName: "crashed" });
    await teardownCluster({ home, clusterName: "alive" });
    rmSync(home, { recursive: true, force: true });
  });
  // A process that has exited stands for the crashed daemon.
  const dead = spawnSync("true").pid ?? 0;
  const first = await allocateCluster({ home, clusterName: "crashed", network, ownerPid: dead });
  const other = await allocateCluster({ home, clusterName: "alive", network, ownerPid: process.pid });
  await ensureNetwork(first.network);
  const crashedPod = await new PodNetworks(first.network).setup({ namespace: "default", name: "left-behind" });
  const alivePod = await new PodNetworks(other.network).setup({ namespace: "default", name: "keeps-running" });
  const clusterIp = first.network.kubernetesServiceIp;
  await addServiceIp(first.network, clusterIp);

  const again = await allocateCluster({ home, clusterName: "crashed", network, ownerPid: process.pid });
  assert.equal(again.previousOwnerDied, true);
  assert.deepEqual(again.network, first.network, "a restarted cluster keeps its addresses and port");
  await sweep(again.network);

  assert.equal(PodNetworks.exists(crashedPod.netns), false);
  assert.equal(existsSync(join("/etc/netns", crashedPod.netns)), false);
  assert.equal((await listLinks()).includes(crashedPod.hostVeth), false);
  assert.equal((await linkAddresses(first.network.dummy)).includes(clusterIp), false);
  assert.equal(PodNetworks.exists(alivePod.netns), true, "another cluster's pod is untouched");

  await teardownCluster({ home, clusterName: "crashed" });
  assert.equal((await listLinks()).includes(first.network.bridge), true, "the network stays while a cluster uses it");
  await teardownCluster({ home, clusterName: "alive" });
  assert.equal(PodNetworks.exists(alivePod.netns), false);
  assert.equal((await listLinks()).includes(first.network.bridge), false);
  assert.equal(lookupCluster({ home, clusterName: "alive" }), undefined);
});
