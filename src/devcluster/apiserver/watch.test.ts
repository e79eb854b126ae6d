import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { silentLogger } from "../../base/index.js";
import { type KubeObject, Resources, type WatchEvent } from "../api/types.js";
import { LocalApi, type LocalApiOptions } from "./index.js";

async function newApi(t: TestContext, opts: Partial<LocalApiOptions> = {}) {
  const api = new LocalApi({ serviceCidr: "10.201.3.0/24", clusterName: "t", log: silentLogger, ...opts });
  await api.start();
  t.after(() => api.close());
  const c = api.client();
  await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
  return { api, c };
}

const cm = (
  name: string,
  labels: Record<string, string> = {},
  data: Record<string, string> = { a: "1" },
): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "sample", labels },
  data,
});

/** Reads `n` events from a watch iterator. */
async function take(it: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

function open(t: TestContext, api: LocalApi, opts: Parameters<ReturnType<LocalApi["client"]>["watch"]>[1]) {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const it = api.client().watch(Resources.configmaps, opts, ac.signal)[Symbol.asyncIterator]();
  return { it, ac };
}

const summary = (evs: WatchEvent[]) => evs.map((e) => `${e.type} ${e.object.metadata.name ?? ""}`);

describe("list", () => {
  it("pages with limit/continue in key order, and an expired token is 410", async (t) => {
    const { c } = await newApi(t, { historyWindow: 5 });
    for (const n of ["c", "a", "e", "b", "d"]) await c.create(Resources.configmaps, cm(n));
    const p1 = await c.list(Resources.configmaps, { namespace: "sample", limit: 2 });
    assert.deepEqual(
      p1.items.map((i) => i.metadata.name),
      ["a", "b"],
    );
    assert.ok(p1.continue);
    const p2 = await c.list(Resources.configmaps, { namespace: "sample", limit: 2, continue: p1.continue ?? "" });
    assert.deepEqual(
      p2.items.map((i) => i.metadata.name),
      ["c", "d"],
    );
    assert.equal(p2.resourceVersion, p1.resourceVersion);
    const p3 = await c.list(Resources.configmaps, { namespace: "sample", limit: 2, continue: p2.continue ?? "" });
    assert.deepEqual(
      p3.items.map((i) => i.metadata.name),
      ["e"],
    );
    assert.equal(p3.continue, undefined);
    for (let i = 0; i < 6; i++)
      await c.patch(Resources.configmaps, "sample", "a", "application/merge-patch+json", { data: { n: String(i) } });
    await assert.rejects(
      c.list(Resources.configmaps, { namespace: "sample", limit: 2, continue: p1.continue ?? "" }),
      (e: { code?: number }) => e.code === 410,
    );
    await assert.rejects(
      c.list(Resources.configmaps, { continue: "garbage" }),
      (e: { code?: number }) => e.code === 400,
    );
  });

  it("filters by namespace and selectors", async (t) => {
    const { c } = await newApi(t);
    await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "other" } });
    await c.create(Resources.configmaps, cm("x", { app: "a" }));
    await c.create(Resources.configmaps, cm("y", { app: "b" }));
    await c.create(Resources.configmaps, {
      ...cm("z", { app: "a" }),
      metadata: { name: "z", namespace: "other", labels: { app: "a" } },
    });
    const all = await c.list(Resources.configmaps, { labelSelector: "app=a" });
    assert.deepEqual(
      all.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`),
      ["other/z", "sample/x"],
    );
    const one = await c.list(Resources.configmaps, { namespace: "sample", fieldSelector: "metadata.name=y" });
    assert.deepEqual(
      one.items.map((i) => i.metadata.name),
      ["y"],
    );
  });
});

describe("watch", () => {
  it("from 0 sends the current state as ADDED, then live events", async (t) => {
    const { api, c } = await newApi(t);
    await c.create(Resources.configmaps, cm("a"));
    const { it } = open(t, api, { namespace: "sample", resourceVersion: "0" });
    assert.deepEqual(summary(await take(it, 1)), ["ADDED a"]);
    await c.create(Resources.configmaps, cm("b"));
    await c.patch(Resources.configmaps, "sample", "b", "application/merge-patch+json", { data: { a: "2" } });
    const del = c.delete(Resources.configmaps, "sample", "a");
    const evs = await take(it, 3);
    assert.deepEqual(summary(evs), ["ADDED b", "MODIFIED b", "DELETED a"]);
    const deleted = await del;
    // The DELETE answer is the last stored state; the event carries the deletion's own resourceVersion.
    assert.ok(Number(evs[2]?.object.metadata.resourceVersion) > Number(deleted.metadata.resourceVersion));
    assert.equal(evs[2]?.object.metadata.resourceVersion, api.resourceVersion);
  });

  it("from a list's resourceVersion sends only what changed after it", async (t) => {
    const { api, c } = await newApi(t);
    await c.create(Resources.configmaps, cm("a"));
    const list = await c.list(Resources.configmaps, { namespace: "sample" });
    await c.create(Resources.configmaps, cm("b"));
    const { it } = open(t, api, { namespace: "sample", resourceVersion: list.resourceVersion });
    const evs = await take(it, 1);
    assert.deepEqual(summary(evs), ["ADDED b"]);
    assert.ok(Number(evs[0]?.object.metadata.resourceVersion) > Number(list.resourceVersion));
  });

  it("turns label-selector transitions into ADDED and DELETED", async (t) => {
    const { api, c } = await newApi(t);
    await c.create(Resources.configmaps, cm("a", { app: "x" }));
    const { it } = open(t, api, { namespace: "sample", labelSelector: "app=y", resourceVersion: api.resourceVersion });
    await c.patch(Resources.configmaps, "sample", "a", "application/merge-patch+json", {
      metadata: { labels: { app: "y" } },
    });
    await c.patch(Resources.configmaps, "sample", "a", "application/merge-patch+json", { data: { b: "1" } });
    await c.patch(Resources.configmaps, "sample", "a", "application/merge-patch+json", {
      metadata: { labels: { app: "z" } },
    });
    assert.deepEqual(summary(await take(it, 3)), ["ADDED a", "MODIFIED a", "DELETED a"]);
  });

  it("sends bookmarks carrying only the resourceVersion when asked", async (t) => {
    const { api, c } = await newApi(t, { bookmarkIntervalMs: 20 });
    await c.create(Resources.configmaps, cm("a"));
    const { it } = open(t, api, {
      namespace: "sample",
      resourceVersion: api.resourceVersion,
      allowWatchBookmarks: true,
    });
    const [ev] = await take(it, 1);
    assert.equal(ev?.type, "BOOKMARK");
    assert.deepEqual(ev?.object, {
      kind: "ConfigMap",
      apiVersion: "v1",
      metadata: { resourceVersion: api.resourceVersion },
    });
  });

  it("a resourceVersion older than the history window gets one 410 Expired ERROR, then the watch ends", async (t) => {
    const { api, c } = await newApi(t, { historyWindow: 3 });
    const first = await c.create(Resources.configmaps, cm("a"));
    for (let i = 0; i < 5; i++)
      await c.patch(Resources.configmaps, "sample", "a", "application/merge-patch+json", { data: { n: String(i) } });
    const { it } = open(t, api, { namespace: "sample", resourceVersion: first.metadata.resourceVersion ?? "" });
    const evs = await take(it, 2);
    assert.equal(evs.length, 1);
    assert.equal(evs[0]?.type, "ERROR");
    const st = evs[0]?.object as unknown as { code: number; reason: string; message: string };
    assert.equal(st.code, 410);
    assert.equal(st.reason, "Expired");
    assert.match(st.message, new RegExp(`^too old resource version: ${first.metadata.resourceVersion} \\(\\d+\\)$`));
    const within = open(t, api, { namespace: "sample", resourceVersion: String(Number(api.resourceVersion) - 2) });
    assert.deepEqual(summary(await take(within.it, 2)), ["MODIFIED a", "MODIFIED a"]);
  });

  it("a watcher that falls too far behind is closed with 410 instead of buffering", async (t) => {
    const { api, c } = await newApi(t, { watcherQueueLimit: 5 });
    const { it } = open(t, api, { namespace: "sample", resourceVersion: api.resourceVersion });
    for (let i = 0; i < 10; i++) await c.create(Resources.configmaps, cm(`x${i}`));
    const evs = await take(it, 20);
    assert.equal(evs.length, 1);
    assert.equal(evs[0]?.type, "ERROR");
    assert.equal(api.watcherCount(), 0);
  });

  it("ends when its signal aborts and unregisters", async (t) => {
    const { api } = await newApi(t);
    const { it, ac } = open(t, api, { namespace: "sample" });
    assert.equal(api.watcherCount(), 1);
    const pending = it.next();
    ac.abort();
    assert.equal((await pending).done, true);
    assert.equal(api.watcherCount(), 0);
  });

  it("fans out to 200 watchers while a writer keeps going; every watcher sees every event in order", async (t) => {
    const { api, c } = await newApi(t);
    const rv = api.resourceVersion;
    const watchers = Array.from({ length: 200 }, (_, i) =>
      open(t, api, { namespace: "sample", resourceVersion: rv, labelSelector: i % 2 ? "" : "w=1" }),
    );
    const writes = 300;
    const readers = watchers.map(async (w, i) => {
      const evs = await take(w.it, writes);
      return { i, evs };
    });
    for (let i = 0; i < writes; i++)
      await c.create(Resources.configmaps, cm(`n${String(i).padStart(4, "0")}`, { w: "1" }));
    for (const { evs } of await Promise.all(readers)) {
      assert.equal(evs.length, writes);
      const rvs = evs.map((e) => Number(e.object.metadata.resourceVersion));
      assert.ok(rvs.every((v, j) => j === 0 || v > (rvs[j - 1] ?? 0)));
    }
  });

  it("watch-list: initial state, a bookmark marking its end, then live events", async (t) => {
    const { api, c } = await newApi(t);
    await c.create(Resources.configmaps, cm("a"));
    const rv = api.resourceVersion;
    const { it } = open(t, api, {
      namespace: "sample",
      sendInitialEvents: true,
      allowWatchBookmarks: true,
      resourceVersion: "",
    });
    const first = await take(it, 2);
    assert.deepEqual(summary(first), ["ADDED a", "BOOKMARK "]);
    assert.deepEqual(first[1]?.object.metadata, {
      resourceVersion: rv,
      annotations: { "k8s.io/initial-events-end": "true" },
    });
    await c.create(Resources.configmaps, cm("b"));
    assert.deepEqual(summary(await take(it, 1)), ["ADDED b"]);
  });
});

describe("list resourceVersion", () => {
  it("a resourceVersion the store has not reached is a 504 Timeout", async (t) => {
    const { api, c } = await newApi(t);
    const ahead = String(Number(api.resourceVersion) + 100);
    await assert.rejects(
      c.list(Resources.configmaps, { resourceVersion: ahead }),
      (e: { code?: number; reason?: string }) => e.code === 504 && e.reason === "Timeout",
    );
    const ok = await c.list(Resources.configmaps, { resourceVersion: api.resourceVersion });
    assert.equal(ok.resourceVersion, api.resourceVersion);
  });
});
