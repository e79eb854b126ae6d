import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../base/index.js";
import {
  type ApiClient,
  type KubeObject,
  type ListOptions,
  type ObjectList,
  Resources,
  type WatchEvent,
  type WatchOptions,
} from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { Informer, objectKey, splitKey } from "./informer.js";

const cm = (name: string, rv: string, data = "x"): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns", uid: `uid-${name}`, resourceVersion: rv },
  data: { v: data },
});

/**
 * A scripted ApiClient: each list answers the next scripted list; each watch plays the next
 * scripted event sequence, then stays open until aborted (or ends, when the script says so).
 */
class ScriptedClient implements Partial<ApiClient> {
  lists: ObjectList[];
  watches: WatchEvent[][];
  listCalls: ListOptions[] = [];
  watchCalls: WatchOptions[] = [];
  constructor(lists: ObjectList[], watches: WatchEvent[][]) {
    this.lists = lists;
    this.watches = watches;
  }
  async list(_ref: unknown, opts: ListOptions = {}): Promise<ObjectList> {
    this.listCalls.push(opts);
    const next = this.lists.shift();
    if (!next) throw new Error("no more scripted lists");
    return next;
  }
  watch(_ref: unknown, opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    this.watchCalls.push(opts);
    const events = this.watches.shift() ?? [];
    return (async function* () {
      for (const ev of events) yield ev;
      if (events.at(-1)?.type === "ERROR") return;
      if (signal.aborted) return;
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    })();
  }
}

test("objectKey and splitKey agree for namespaced and cluster-scoped objects", () => {
  assert.equal(objectKey(cm("a", "1")), "ns/a");
  assert.deepEqual(splitKey("ns/a"), { namespace: "ns", name: "a" });
  const node: KubeObject = { apiVersion: "v1", kind: "Node", metadata: { name: "n1" } };
  assert.equal(objectKey(node), "n1");
  assert.deepEqual(splitKey("n1"), { namespace: "", name: "n1" });
});

test("the informer lists, watches from the list's resourceVersion, and relists after a 410 with the right handler calls", async (t) => {
  const gone: WatchEvent = {
    type: "ERROR",
    object: { apiVersion: "v1", kind: "Status", metadata: {}, code: 410, reason: "Expired" } as KubeObject,
  };
  const client = new ScriptedClient(
    [
      { items: [cm("a", "3"), cm("b", "4")], resourceVersion: "5" },
      // After the 410: b is gone, c appeared, a changed while we were not watching.
      { items: [cm("a", "8", "changed"), cm("c", "9")], resourceVersion: "10" },
    ],
    [[{ type: "MODIFIED", object: cm("a", "6", "y") }, gone], [{ type: "DELETED", object: cm("c", "11") }]],
  );
  const calls: string[] = [];
  const inf = new Informer({ client: client as unknown as ApiClient, ref: Resources.configmaps, log: silentLogger });
  const cDeleted = new Promise<void>((resolve) => {
    inf.addHandler({
      add: (o) => calls.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
      update: (o, n) =>
        calls.push(`update ${o.metadata.name}@${o.metadata.resourceVersion}->${n.metadata.resourceVersion}`),
      delete: (o) => {
        calls.push(`delete ${o.metadata.name}`);
        if (o.metadata.name === "c") resolve();
      },
    });
  });
  assert.equal(inf.hasSynced(), false);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = inf.run(ac.signal);
  await inf.waitForSync();
  assert.equal(inf.hasSynced(), true);
  await cDeleted;
  assert.deepEqual(calls, ["add a@3", "add b@4", "update a@3->6", "update a@6->8", "add c@9", "delete b", "delete c"]);
  assert.deepEqual(
    client.watchCalls.map((w) => w.resourceVersion),
    ["5", "10"],
  );
  assert.deepEqual(
    inf.list().map((o) => o.metadata.name),
    ["a"],
  );
  assert.deepEqual(inf.get("ns", "a")?.data, { v: "changed" });
  assert.equal(inf.resourceVersion, "11");
  ac.abort();
  await running;
});

test("a handler added after sync is replayed the cache", async (t) => {
  const client = new ScriptedClient([{ items: [cm("a", "1")], resourceVersion: "1" }], [[]]);
  const inf = new Informer({ client: client as unknown as ApiClient, ref: Resources.configmaps });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = inf.run(ac.signal);
  await inf.waitForSync();
  const seen: string[] = [];
  inf.addHandler({ add: (o) => seen.push(o.metadata.name ?? "") });
  assert.deepEqual(seen, ["a"]);
  ac.abort();
  await running;
});

test("against the real in-memory API the cache follows creates, updates and deletes", async (t) => {
  const api = new LocalApi({ serviceCidr: "10.201.252.0/24", clusterName: "inf", log: silentLogger });
  await api.start();
  const client = api.client();
  const ac = new AbortController();
  t.after(async () => {
    ac.abort();
    await api.close();
  });
  const inf = new Informer({ client, ref: Resources.configmaps });
  let waiter: { check: () => boolean; resolve: () => void } | undefined;
  const when = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      if (check()) resolve();
      else waiter = { check, resolve };
    });
  const poke = () => {
    if (waiter?.check()) waiter.resolve();
  };
  inf.addHandler({ add: poke, update: poke, delete: poke });
  await client.create(Resources.configmaps, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "before", namespace: "default" },
  });
  const running = inf.run(ac.signal);
  await inf.waitForSync();
  assert.ok(inf.get("default", "before"));
  await client.create(Resources.configmaps, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "after", namespace: "default" },
  });
  await when(() => inf.get("default", "after") !== undefined);
  await client.patch(Resources.configmaps, "default", "after", "application/merge-patch+json", { data: { k: "v" } });
  await when(() => (inf.get("default", "after")?.data as { k?: string } | undefined)?.k === "v");
  await client.delete(Resources.configmaps, "default", "before");
  await when(() => inf.get("default", "before") === undefined);
  assert.deepEqual(
    inf
      .list("default")
      .map((o) => o.metadata.name)
      .sort(),
    ["after"],
  );
  ac.abort();
  await running;
});
