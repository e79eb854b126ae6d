import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { silentLogger } from "../../base/index.js";
import { type KubeObject, Resources } from "../api/types.js";
import { LocalApi, type LocalApiOptions } from "./index.js";
import { logPath } from "./wal.js";

function stateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "isthmus-apiserver-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(t: TestContext, dir: string, opts: Partial<LocalApiOptions> = {}): Promise<LocalApi> {
  const api = new LocalApi({
    stateDir: dir,
    serviceCidr: "10.201.3.0/24",
    clusterName: "t",
    log: silentLogger,
    ...opts,
  });
  await api.start();
  t.after(() => api.close());
  return api;
}

const cm = (name: string, data: Record<string, string> = { a: "1" }): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "sample" },
  data,
});

describe("persistence", () => {
  it("brings back every object with its resourceVersion, and the counter continues", async (t) => {
    const dir = stateDir(t);
    const a = await open(t, dir);
    const c = a.client();
    await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
    const x = await c.create(Resources.configmaps, cm("x"));
    await c.create(Resources.configmaps, cm("gone"));
    await c.delete(Resources.configmaps, "sample", "gone");
    const svc = await c.create(Resources.services, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "s", namespace: "sample" },
      spec: { ports: [{ port: 80 }] },
    });
    const rv = a.resourceVersion;
    await a.close();

    const b = await open(t, dir);
    const d = b.client();
    assert.equal(b.resourceVersion, rv);
    assert.deepEqual(await d.get(Resources.configmaps, "sample", "x"), x);
    assert.deepEqual(await d.get(Resources.services, "sample", "s"), svc);
    await assert.rejects(d.get(Resources.configmaps, "sample", "gone"), (e: { code?: number }) => e.code === 404);
    const next = await d.create(Resources.configmaps, cm("y"));
    assert.equal(Number(next.metadata.resourceVersion), Number(rv) + 1);
    // The allocation survived: a new Service does not get the same ClusterIP, an explicit claim of it is refused.
    const ip = (svc.spec as { clusterIP: string }).clusterIP;
    const s2 = await d.create(Resources.services, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "s2", namespace: "sample" },
      spec: { ports: [{ port: 80 }] },
    });
    assert.notEqual((s2.spec as { clusterIP: string }).clusterIP, ip);
    await assert.rejects(
      d.create(Resources.services, {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "s3", namespace: "sample" },
        spec: { clusterIP: ip, ports: [{ port: 80 }] },
      }),
      (e: { code?: number }) => e.code === 422,
    );
    // A watch from a resourceVersion before the restart cannot be served.
    const ac = new AbortController();
    t.after(() => ac.abort());
    const it = d.watch(Resources.configmaps, { resourceVersion: "2" }, ac.signal)[Symbol.asyncIterator]();
    const ev = await it.next();
    assert.equal(ev.value?.type, "ERROR");
  });

  it("drops a torn final record and keeps everything acknowledged before it", async (t) => {
    const dir = stateDir(t);
    const a = await open(t, dir);
    const c = a.client();
    await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
    await c.create(Resources.configmaps, cm("kept"));
    const rv = a.resourceVersion;
    await a.close();
    appendFileSync(logPath(dir), '{"rv":999,"r":"/configmaps","k":"sample/torn","o":{"apiVersion":"v1","ki');
    const b = await open(t, dir);
    const d = b.client();
    assert.equal(b.resourceVersion, rv);
    assert.equal((await d.get(Resources.configmaps, "sample", "kept")).metadata.name, "kept");
    await assert.rejects(d.get(Resources.configmaps, "sample", "torn"), (e: { code?: number }) => e.code === 404);
    await d.create(Resources.configmaps, cm("after"));
    await b.close();
    const cAgain = await open(t, dir);
    assert.equal((await cAgain.client().get(Resources.configmaps, "sample", "after")).metadata.name, "after");
    assert.ok(readFileSync(logPath(dir), "utf8").endsWith("\n"));
  });

  it("refuses a log that is corrupt before its last record", async (t) => {
    const dir = stateDir(t);
    const a = await open(t, dir);
    await a.close();
    const text = readFileSync(logPath(dir), "utf8");
    writeFileSync(logPath(dir), `garbage\n${text}`);
    const b = new LocalApi({ stateDir: dir, serviceCidr: "10.201.3.0/24", clusterName: "t", log: silentLogger });
    await assert.rejects(b.start(), /corrupt at line 1/);
  });

  it("compacts into a snapshot and loads from snapshot + log, concurrent writes included", async (t) => {
    const dir = stateDir(t);
    const a = await open(t, dir, { compactAfter: 20 });
    const c = a.client();
    await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
    await Promise.all(Array.from({ length: 60 }, (_, i) => c.create(Resources.configmaps, cm(`m${i}`))));
    for (let i = 0; i < 10; i++) await c.delete(Resources.configmaps, "sample", `m${i}`);
    await c.patch(Resources.configmaps, "sample", "m10", "application/merge-patch+json", { data: { a: "changed" } });
    const rv = a.resourceVersion;
    await a.close();
    assert.ok(readFileSync(join(dir, "snapshot.jsonl"), "utf8").length > 0);
    const b = await open(t, dir);
    assert.equal(b.resourceVersion, rv);
    const items = (await b.client().list(Resources.configmaps, { namespace: "sample" })).items;
    assert.equal(items.length, 50);
    assert.deepEqual(items.find((i) => i.metadata.name === "m10")?.data, { a: "changed" });
  });
});
