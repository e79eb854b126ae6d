/**
 * The network's bridge keeps its MAC address when pods come and go (root). An unpinned Linux
 * bridge takes its lowest port's MAC and changes it when that port is deleted; the other pods'
 * ARP entries for the gateway then point nowhere, and their DNS lookups (to the kube-dns ClusterIP,
 * behind the gateway) were lost for seconds whenever a pod of the network was replaced.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { allocateCluster, ensureNetwork, PodNetworks, teardownCluster } from "./cluster-network.js";
import { run, tryRun } from "./exec.js";

const root = process.getuid?.() === 0;
const macOf = (link: string) => readFileSync(join("/sys/class/net", link, "address"), "utf8").trim();

it("the bridge keeps its MAC when the pod with the lowest MAC goes; the other pods still reach the gateway", {
  skip: root ? false : "needs root",
  timeout: 60_000,
}, async (t) => {
  const home = mkdtempSync(join(tmpdir(), "isth-bridge-test-"));
  const server = createServer((_req, res) => res.end("gateway"));
  t.after(async () => {
    server.close();
    await teardownCluster({ home, clusterName: "mac" });
    rmSync(home, { recursive: true, force: true });
  });
  const { network } = await allocateCluster({ home, clusterName: "mac", network: `mac-${process.pid}` });
  await ensureNetwork(network);
  const pinned = macOf(network.bridge);
  await new Promise<void>((resolve) => server.listen(0, network.gateway, () => resolve()));
  const url = `http://${network.gateway}:${(server.address() as AddressInfo).port}/`;
  const pods = new PodNetworks(network);
  const stays = await pods.setup({ namespace: "default", name: "stays" });
  const goes = await pods.setup({ namespace: "default", name: "goes" });
  // The lowest unicast MAC there is: an unpinned bridge adopts it now and drops it when the pod goes.
  await run("ip", ["link", "set", goes.hostVeth, "address", "00:00:00:00:00:01"]);
  assert.equal(macOf(network.bridge), pinned, "the bridge took a port's MAC");
  const call = () => tryRun("ip", ["netns", "exec", stays.netns, "curl", "-sS", "--max-time", "3", url]);
  assert.equal((await call()).stdout, "gateway", "a pod reaches its gateway");
  await pods.teardown(goes);
  assert.equal(macOf(network.bridge), pinned, "the bridge's MAC changed when a pod went");
  // `stays` learned the gateway's MAC above; had it changed, this request would be lost.
  const after = await call();
  assert.equal(after.stdout, "gateway", `the pod lost its gateway when another pod went: ${after.stderr}`);
});
