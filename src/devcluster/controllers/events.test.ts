import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../base/index.js";
import { type ApiClient, type KubeObject, Resources } from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { createEventRecorder } from "./events.js";

/** Resolves with the Events of `namespace` once `check` accepts them (re-checked on every watch event). */
async function eventsWhen(
  client: ApiClient,
  namespace: string,
  check: (items: KubeObject[]) => boolean,
): Promise<KubeObject[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  try {
    const list = await client.list(Resources.events, { namespace });
    const items = new Map(list.items.map((o) => [o.metadata.name ?? "", o]));
    if (check([...items.values()])) return [...items.values()];
    for await (const ev of client.watch(
      Resources.events,
      { namespace, resourceVersion: list.resourceVersion },
      ac.signal,
    )) {
      if (ev.type === "DELETED") items.delete(ev.object.metadata.name ?? "");
      else items.set(ev.object.metadata.name ?? "", ev.object);
      if (check([...items.values()])) return [...items.values()];
    }
    throw new Error(
      `events in ${namespace} never matched; last: ${JSON.stringify([...items.values()].map((e) => [e.reason, e.count]))}`,
    );
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

test("events are recorded with involvedObject and source; repeats bump count; a deleted Event is recorded anew", async (t) => {
  const api = new LocalApi({ serviceCidr: "10.201.253.0/24", clusterName: "ev", log: silentLogger });
  await api.start();
  t.after(() => api.close());
  const client = api.client();
  const rec = createEventRecorder({ client, component: "deployment-controller" });
  const obj = { apiVersion: "apps/v1", kind: "Deployment", namespace: "default", name: "web", uid: "u-1" };
  rec.normal(obj, "ScalingReplicaSet", "Scaled up replica set web-abc from 0 to 1");
  const [first] = await eventsWhen(client, "default", (items) => items.length === 1);
  assert.ok(first);
  assert.equal(first.type, "Normal");
  assert.equal(first.reason, "ScalingReplicaSet");
  assert.equal(first.count, 1);
  assert.deepEqual(first.source, { component: "deployment-controller" });
  assert.equal((first.involvedObject as { uid?: string }).uid, "u-1");
  assert.match(first.metadata.name ?? "", /^web\.[0-9a-f]+$/);

  rec.normal(obj, "ScalingReplicaSet", "Scaled up replica set web-abc from 0 to 1");
  rec.normal(obj, "ScalingReplicaSet", "Scaled up replica set web-abc from 0 to 1");
  await eventsWhen(client, "default", (items) => items.length === 1 && items[0]?.count === 3);

  await client.delete(Resources.events, "default", first.metadata.name ?? "");
  rec.warning(obj, "FailedCreate", "Error creating: quota");
  rec.normal(obj, "ScalingReplicaSet", "Scaled up replica set web-abc from 0 to 1");
  const after = await eventsWhen(client, "default", (items) => items.length === 2);
  assert.deepEqual(after.map((e) => [e.reason, e.type, e.count]).sort(), [
    ["FailedCreate", "Warning", 1],
    ["ScalingReplicaSet", "Normal", 1],
  ]);
});
