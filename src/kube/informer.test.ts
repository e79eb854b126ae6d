import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { Backoff, silentLogger, waitFor } from "../base/index.js";
import { FakeApiServer } from "../../test/support/fake-apiserver.js";
import { KubeClient, type ListWatcher } from "./client.js";
import { Informer, type InformerEvent } from "./informer.js";
import { type ConfigMap, type ResourceType, type Service, ResourceTypes } from "./objects.js";
import { Resources } from "../devcluster/api/types.js";
import { startTestApiServer } from "../devcluster/apiserver/http/testing.js";

const svc = (name: string, labels: Record<string, string> = {}) => ({
  metadata: { name, namespace: "sample", labels },
});

/** Runs an informer of `type` (fast back-off, silent) until the test ends. */
function runInformer<T extends Service | ConfigMap>(
  t: { after: (fn: () => unknown) => void },
  opts: { client: ListWatcher; type: ResourceType; namespace?: string },
): { informer: Informer<T>; abort: AbortController } {
  const abort = new AbortController();
  const informer = new Informer<T>({ ...opts, log: silentLogger, backoff: new Backoff(20, 50) });
  const run = informer.run(abort.signal);
  t.after(async () => {
    abort.abort();
    await run;
  });
  return { informer, abort };
}

async function setup(t: { after: (fn: () => unknown) => void }, opts: { initial?: ReturnType<typeof svc>[] } = {}) {
  const server = new FakeApiServer();
  await server.start();
  for (const o of opts.initial ?? []) server.put("services", o);
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig());
  const events: string[] = [];
  const waiters: { pred: (e: string) => boolean; resolve: () => void }[] = [];
  const { informer, abort } = runInformer<Service>(t, { client: new KubeClient(kc), type: ResourceTypes.services });
  t.after(() => server.stop().catch(() => {}));
  informer.subscribe((e: InformerEvent<Service>) => {
    const s = `${e.type} ${e.object.metadata.name}`;
    events.push(s);
    for (const w of [...waiters])
      if (w.pred(s)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  });
  const seen = (s: string) =>
    new Promise<void>((resolve) => (events.includes(s) ? resolve() : waiters.push({ pred: (e) => e === s, resolve })));
  return { server, informer, events, seen, abort };
}

describe("Informer against an API server", () => {
  it("lists, then delivers watch events; hasSynced after the first list", async (t) => {
    const { server, informer, events, seen, abort } = await setup(t, { initial: [svc("a")] });
    assert.equal(informer.hasSynced(), false);
    await informer.waitForSync(abort.signal);
    assert.deepEqual(events, ["added a"]);
    server.put("services", svc("b"));
    await seen("added b");
    server.put("services", svc("b", { v: "2" }));
    await seen("updated b");
    server.remove("services", "sample", "a");
    await seen("deleted a");
    assert.deepEqual(
      informer.list().map((s) => s.metadata.name),
      ["b"],
    );
    assert.equal(informer.get("b", "sample")?.metadata.labels?.v, "2");
    assert.deepEqual(informer.list("sample", { v: "2" }).length, 1);
    assert.deepEqual(informer.list("other").length, 0);
  });

  it("relists on 410 Gone and emits only the differences", async (t) => {
    const { server, informer, events, seen, abort } = await setup(t);
    server.put("services", svc("keep"));
    await seen("added keep");
    await informer.waitForSync(abort.signal);
    const listsBefore = server.lists.get("services") ?? 0;
    // While nobody watches, history is lost: the informer's resourceVersion is too old.
    server.remove("services", "sample", "keep");
    server.put("services", svc("keep"));
    server.put("services", svc("new"));
    server.compact();
    await seen("added new");
    assert.ok((server.lists.get("services") ?? 0) > listsBefore, "listed again");
    assert.equal(events.filter((e) => e === "added keep").length, 1);
    assert.ok(events.includes("updated keep"));
  });

  it("keeps its cache and reports the error while the server is down, then catches up", async (t) => {
    const { server, informer, seen, abort } = await setup(t);
    server.put("services", svc("a"));
    await seen("added a");
    await informer.waitForSync(abort.signal);
    const port = server.port;
    await server.stop();
    await waitFor("the informer to report the failure", () => informer.lastError() !== undefined, { intervalMs: 10 });
    assert.match(informer.lastError() ?? "", /ECONNREFUSED/);
    assert.deepEqual(
      informer.list().map((s) => s.metadata.name),
      ["a"],
      "last known objects are kept",
    );
    server.put("services", svc("b"));
    await server.restart(port);
    await seen("added b");
    assert.equal(informer.lastError(), undefined);
  });

  it("reports a rejected token", async (t) => {
    const server = new FakeApiServer();
    server.token = "right";
    await server.start();
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig("fake", "wrong"));
    const { informer } = runInformer<Service>(t, { client: new KubeClient(kc), type: ResourceTypes.services });
    t.after(() => server.stop());
    await waitFor("the informer to report the failure", () => informer.lastError() !== undefined, { intervalMs: 10 });
    assert.match(informer.lastError() ?? "", /HTTP 401 Unauthorized/);
    assert.equal(informer.hasSynced(), false);
  });
});

describe("Informer against the local cluster's API server", () => {
  const cm = (name: string, v = "1") => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: "default" },
    data: { v },
  });

  it("survives an outage longer than the watch history: relists and emits only the differences", async (t) => {
    const api = await startTestApiServer({ historyWindow: 3 });
    t.after(() => api.close());
    const store = api.api.client();
    await store.create(Resources.configmaps, cm("keep"));
    await store.create(Resources.configmaps, cm("gone"));
    const kc = new KubeConfig();
    kc.loadFromFile(await api.writeKubeconfig());
    const kube = new KubeClient(kc);
    let lists = 0;
    const counting: ListWatcher = {
      list: (...a) => {
        lists++;
        return kube.list(...a);
      },
      watch: (...a) => kube.watch(...a),
    };
    const { informer, abort } = runInformer<ConfigMap>(t, {
      client: counting,
      type: ResourceTypes.configmaps,
      namespace: "default",
    });
    const events: string[] = [];
    informer.subscribe((e) => events.push(`${e.type} ${e.object.metadata.name}`));
    await informer.waitForSync(abort.signal);
    assert.deepEqual(events.sort(), ["added gone", "added keep"]);

    await api.http.stopListening();
    await waitFor("the informer to notice", () => informer.lastError() !== undefined, { intervalMs: 10 });
    // More changes than the server remembers: the informer's resourceVersion will be too old (410).
    await store.delete(Resources.configmaps, "default", "gone");
    for (const n of ["n1", "n2", "n3", "n4"]) await store.create(Resources.configmaps, cm(n));
    const keep = await store.get(Resources.configmaps, "default", "keep");
    await store.update(Resources.configmaps, { ...keep, data: { v: "2" } });
    await api.http.listen();
    await waitFor(
      "the informer to catch up",
      () => informer.list().length === 5 && informer.lastError() === undefined,
      {
        intervalMs: 10,
      },
    );
    assert.deepEqual(
      informer
        .list()
        .map((c) => c.metadata.name)
        .sort(),
      ["keep", "n1", "n2", "n3", "n4"],
    );
    assert.equal(informer.get("keep", "default")?.data?.v, "2");
    assert.equal(lists, 2, "listed again after 410 Gone");
    assert.deepEqual(events.slice(2).sort(), [
      "added n1",
      "added n2",
      "added n3",
      "added n4",
      "deleted gone",
      "updated keep",
    ]);
  });

  it("names the API server when the token is refused", async (t) => {
    const api = await startTestApiServer();
    t.after(() => api.close());
    const kc = new KubeConfig();
    kc.loadFromFile(await api.writeKubeconfig("not-a-token"));
    const { informer } = runInformer<ConfigMap>(t, { client: new KubeClient(kc), type: ResourceTypes.configmaps });
    await waitFor("the refusal", () => informer.lastError(), { intervalMs: 10 });
    assert.match(informer.lastError() ?? "", new RegExp(`GET ${api.url}/api/v1/configmaps.*HTTP 401 Unauthorized`));
  });
});
