import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { silentLogger } from "../base/index.js";
import { Informer, ResourceTypes, type Secret } from "../kube/index.js";
import { MemoryListWatcher } from "../../test/support/memory-list-watcher.js";
import { type Clock, type RemoteCluster, type RemoteClusterInput, SecretController } from "./secret-controller.js";

/** A remote cluster whose sync the test controls, recording what the controller did to it. */
class FakeCluster implements RemoteCluster {
  readonly input: RemoteClusterInput;
  readonly log: string[];
  synced = false;
  error: string | undefined;
  #resolve: () => void = () => {};
  readonly #syncedPromise = new Promise<void>((r) => {
    this.#resolve = r;
  });
  constructor(input: RemoteClusterInput, log: string[]) {
    this.input = input;
    this.log = log;
  }
  #say(what: string) {
    this.log.push(`${what} ${this.input.clusterId}@${this.input.kubeconfig}`);
  }
  start() {
    this.#say("start");
  }
  hasSynced() {
    return this.synced;
  }
  whenSynced() {
    return this.#syncedPromise;
  }
  sync() {
    this.synced = true;
    this.#resolve();
  }
  activate() {
    this.#say("activate");
  }
  stop() {
    this.#say("stop");
  }
  lastError() {
    return this.error;
  }
}

class FakeClock implements Clock {
  timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  setTimeout(fn: () => void, ms: number) {
    const t = { fn, ms, cancelled: false };
    this.timers.push(t);
    return () => {
      t.cancelled = true;
    };
  }
  fireAll() {
    for (const t of this.timers.splice(0)) if (!t.cancelled) t.fn();
  }
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const secret = (name: string, data: Record<string, string>): Secret => ({
  metadata: { name, namespace: "istio-system", labels: { "istio/multiCluster": "true" } },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});

describe("SecretController", () => {
  let source: MemoryListWatcher;
  let clusters: FakeCluster[];
  let events: string[];
  let clock: FakeClock;
  let controller: SecretController;
  let timeouts: string[];
  const aborts: AbortController[] = [];
  after(() => {
    for (const a of aborts) a.abort();
  });

  /** Resolves at the controller's next change for which `check` holds. */
  const until = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      if (check()) return resolve();
      const off = controller.onChange(() => {
        if (check()) {
          off();
          resolve();
        }
      });
    });

  const nextChange = () =>
    new Promise<void>((resolve) => {
      const off = controller.onChange(() => {
        off();
        resolve();
      });
    });

  beforeEach(async () => {
    source = new MemoryListWatcher();
    clusters = [];
    events = [];
    timeouts = [];
    clock = new FakeClock();
    const secrets = new Informer<Secret>({ client: source, type: ResourceTypes.secrets, log: silentLogger });
    controller = new SecretController({
      ownClusterId: "cluster1",
      secrets,
      clock,
      syncTimeoutMs: 30_000,
      log: silentLogger,
      onSyncTimeout: (id) => timeouts.push(id),
      factory: (input) => {
        if (input.kubeconfig.startsWith("bad"))
          return { ok: false, reasons: [`secret ${input.secretName}: not a kubeconfig`] };
        const c = new FakeCluster(input, events);
        clusters.push(c);
        return { ok: true, value: c };
      },
    });
    const abort = new AbortController();
    aborts.push(abort);
    void secrets.run(abort.signal);
    await secrets.waitForSync(abort.signal);
  });

  it("adds a cluster per data key, shows it at once, and reports syncing then synced", async () => {
    source.put("secrets", secret("istio-remote-secret-cluster2", { cluster2: "kc2" }));
    await until(() => controller.status("cluster2") !== undefined);
    assert.deepEqual(events, ["activate cluster2@kc2", "start cluster2@kc2"]);
    assert.deepEqual(controller.debugInfo(), [
      { id: "cluster2", secretName: "istio-system/istio-remote-secret-cluster2", syncStatus: "syncing" },
    ]);
    assert.equal(controller.hasSynced(), false);
    clusters[0]?.sync();
    await until(() => controller.status("cluster2") === "synced");
    assert.equal(controller.hasSynced(), true);
  });

  it("ignores a key naming its own cluster ID", async () => {
    source.put("secrets", secret("s", { cluster1: "kc1", cluster3: "kc3" }));
    await until(() => controller.status("cluster3") !== undefined);
    assert.equal(controller.status("cluster1"), undefined);
    assert.deepEqual(controller.clusterIds(), ["cluster3"]);
  });

  it("lets the first secret win a duplicate cluster ID", async () => {
    source.put("secrets", secret("a", { cluster2: "from-a" }));
    await until(() => controller.status("cluster2") !== undefined);
    const processed = nextChange();
    source.put("secrets", secret("b", { cluster2: "from-b" }));
    await processed;
    assert.deepEqual(events, ["activate cluster2@from-a", "start cluster2@from-a"]);
    assert.equal(controller.debugInfo()[0]?.secretName, "istio-system/a");
  });

  it("replaces a changed kubeconfig only once the new registry has synced (make-before-break)", async () => {
    source.put("secrets", secret("s", { cluster2: "old" }));
    await until(() => controller.status("cluster2") !== undefined);
    clusters[0]?.sync();
    await until(() => controller.status("cluster2") === "synced");
    source.put("secrets", secret("s", { cluster2: "new" }));
    await until(() => clusters.length === 2);
    assert.deepEqual(events.slice(2), ["start cluster2@new"], "the old one keeps serving until the new one syncs");
    clusters[1]?.sync();
    await until(() => events.includes("stop cluster2@old"));
    assert.deepEqual(events.slice(2), ["start cluster2@new", "activate cluster2@new", "stop cluster2@old"]);
    // The same kubeconfig again changes nothing.
    const processed = nextChange();
    source.put("secrets", secret("s", { cluster2: "new" }));
    await processed;
    assert.equal(clusters.length, 2);
  });

  it("removes a cluster when its key or its secret goes, and reports it closed", async () => {
    source.put("secrets", secret("s", { cluster2: "kc2", cluster3: "kc3" }));
    await until(() => controller.clusterIds().length === 2);
    const c2 = clusters[0];
    source.put("secrets", secret("s", { cluster3: "kc3" }));
    await until(() => controller.clusterIds().length === 1);
    assert.ok(events.includes("stop cluster2@kc2"));
    assert.equal(c2?.input.clusterId, "cluster2");
    source.remove("secrets", "istio-system", "s");
    await until(() => controller.clusterIds().length === 0);
    assert.ok(events.includes("stop cluster3@kc3"));
  });

  it("reports an unusable kubeconfig with the secret's name and disturbs nothing else", async () => {
    source.put("secrets", secret("good", { cluster2: "kc2" }));
    await until(() => controller.status("cluster2") !== undefined);
    source.put("secrets", secret("broken", { cluster3: "bad yaml" }));
    await until(() => controller.debugInfo().length === 2);
    assert.deepEqual(controller.debugInfo()[1], {
      id: "cluster3",
      secretName: "istio-system/broken",
      syncStatus: "failed",
      error: "secret istio-system/broken: not a kubeconfig",
    });
    assert.deepEqual(events, ["activate cluster2@kc2", "start cluster2@kc2"]);
    // A bad replacement for a working cluster keeps the working one.
    source.put("secrets", secret("good", { cluster2: "bad again" }));
    await until(() => controller.debugInfo().some((r) => r.syncStatus === "failed" && r.id === "cluster2"));
    assert.deepEqual(events, ["activate cluster2@kc2", "start cluster2@kc2"]);
    assert.equal(controller.status("cluster2"), "syncing");
  });

  it("times out a cluster that never syncs, so readiness is not held hostage, and recovers when it syncs", async () => {
    source.put("secrets", secret("s", { cluster2: "kc2" }));
    await until(() => controller.status("cluster2") !== undefined);
    assert.equal(clock.timers[0]?.ms, 30_000);
    assert.equal(controller.hasSynced(), false);
    clock.fireAll();
    assert.equal(controller.status("cluster2"), "timeout");
    assert.deepEqual(timeouts, ["cluster2"]);
    assert.equal(controller.hasSynced(), true);
    clusters[0]?.sync();
    await until(() => controller.status("cluster2") === "synced");
  });

  it("does not time out a cluster that synced in time", async () => {
    source.put("secrets", secret("s", { cluster2: "kc2" }));
    await until(() => controller.status("cluster2") !== undefined);
    clusters[0]?.sync();
    await until(() => controller.status("cluster2") === "synced");
    clock.fireAll();
    assert.equal(controller.status("cluster2"), "synced");
    assert.deepEqual(timeouts, []);
  });
});
