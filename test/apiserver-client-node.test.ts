/**
 * The local API server judged by @kubernetes/client-node 2.0.1 (undici transport, HTTPS with
 * our CA, bearer token): typed list, raw watch, and an informer that relists after its watch
 * comes back with a resourceVersion that has left the (deliberately tiny) history window.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CoreV1Api,
  KubeConfig,
  type V1ConfigMap,
  type V1ConfigMapList,
  Watch,
  makeInformer,
} from "@kubernetes/client-node";
import { Resources } from "../src/devcluster/api/types.js";
import { type TestApiServer, startTestApiServer } from "../src/devcluster/apiserver/http/testing.js";

let server: TestApiServer;
let kc: KubeConfig;

function configMap(namespace: string, name: string, data: Record<string, string> = {}) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data };
}

describe("@kubernetes/client-node against the local API server", () => {
  before(async () => {
    // Window of 5 changes: a watch that misses more than that gets 410 Gone.
    // Watches end after 1-2 s, so the informer reconnects (from its last resourceVersion) during the test.
    server = await startTestApiServer({ historyWindow: 5, minWatchTimeoutSeconds: 1 });
    kc = new KubeConfig();
    kc.loadFromFile(await server.writeKubeconfig());
    const c = server.api.client();
    for (const ns of ["lists", "watches", "inf", "other"]) {
      await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    }
  });
  after(async () => {
    await server?.close();
  });

  test("list returns typed objects and paginates with limit/continue", async () => {
    const c = server.api.client();
    for (const n of ["c1", "c2", "c3"]) await c.create(Resources.configmaps, configMap("lists", n, { k: n }));
    const core = kc.makeApiClient(CoreV1Api);
    const all = await core.listNamespacedConfigMap({ namespace: "lists" });
    assert.deepEqual(all.items.map((i) => i.metadata?.name).sort(), ["c1", "c2", "c3"]);
    assert.ok(all.metadata?.resourceVersion);
    const first = await core.listNamespacedConfigMap({ namespace: "lists", limit: 2 });
    assert.equal(first.items.length, 2);
    assert.ok(first.metadata?._continue, "a limited list carries a continue token");
    const rest = await core.listNamespacedConfigMap({
      namespace: "lists",
      limit: 2,
      _continue: first.metadata?._continue,
    });
    const names = [...first.items, ...rest.items].map((i) => i.metadata?.name);
    assert.deepEqual(names.sort(), all.items.map((i) => i.metadata?.name).sort());
    const one = await core.readNamespacedConfigMap({ namespace: "lists", name: "c2" });
    assert.deepEqual(one.data, { k: "c2" });
  });

  test("watch streams ADDED, MODIFIED and DELETED with the objects", async (t) => {
    const seen: string[] = [];
    let resolveDeleted: () => void = () => {};
    const deleted = new Promise<void>((r) => {
      resolveDeleted = r;
    });
    let resolveStarted: () => void = () => {};
    const started = new Promise<void>((r) => {
      resolveStarted = r;
    });
    const list = await kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: "watches" });
    const w = new Watch(kc);
    const req = await w.watch(
      "/api/v1/namespaces/watches/configmaps",
      { resourceVersion: list.metadata?.resourceVersion },
      (type: string, obj: V1ConfigMap) => {
        if (obj.metadata?.name !== "w1") return;
        seen.push(`${type}:${obj.data?.a ?? ""}`);
        if (type === "DELETED") resolveDeleted();
      },
      () => {},
    );
    t.after(() => req.abort());
    resolveStarted();
    await started;
    const c = server.api.client();
    await c.create(Resources.configmaps, configMap("watches", "w1", { a: "1" }));
    await c.patch(Resources.configmaps, "watches", "w1", "application/merge-patch+json", { data: { a: "2" } });
    await c.delete(Resources.configmaps, "watches", "w1");
    await deleted;
    assert.deepEqual(seen, ["ADDED:1", "MODIFIED:2", "DELETED:2"]);
  });

  test("an informer relists after 410 Gone and keeps its cache right", async (t) => {
    const c = server.api.client();
    await c.create(Resources.configmaps, configMap("inf", "a"));
    const core = kc.makeApiClient(CoreV1Api);
    let lists = 0;
    let onSecondList: () => void = () => {};
    const relisted = new Promise<void>((r) => {
      onSecondList = r;
    });
    const listFn = async (): Promise<V1ConfigMapList> => {
      lists++;
      if (lists === 2) onSecondList();
      return core.listNamespacedConfigMap({ namespace: "inf" });
    };
    const inf = makeInformer(kc, "/api/v1/namespaces/inf/configmaps", listFn);
    // client-node waits between reconnects on a ref'd timer that outlives stop(); an unref'd one lets the test exit.
    Object.assign(inf, { delayFn: (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()) });
    const added = new Map<string, () => void>();
    const waitAdded = (name: string) =>
      new Promise<void>((r) => {
        if (inf.get(name, "inf")) r();
        else added.set(name, r);
      });
    inf.on("add", (obj) => added.get(obj.metadata?.name ?? "")?.());
    const errors: unknown[] = [];
    inf.on("error", (err) => errors.push(err));
    t.after(() => inf.stop());
    await inf.start();
    await waitAdded("a");
    // Changes the informer does not see (another namespace) push its resourceVersion out of the window.
    for (let i = 0; i < 12; i++) await c.create(Resources.configmaps, configMap("other", `o${i}`));
    // The server ends the watch within 2 s; the informer reconnects from rvBefore, gets ERROR 410, relists.
    await relisted;
    await c.create(Resources.configmaps, configMap("inf", "b"));
    await waitAdded("b");
    assert.deepEqual(errors, []);
    assert.ok(lists >= 2, "the informer listed again after 410");
    assert.deepEqual(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
      ["a", "b"],
    );
  });
});
