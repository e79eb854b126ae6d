import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../base/index.js";
import { type KubeObject, Resources } from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { claimDependents } from "./claim.js";

test("claimDependents keeps, adopts, releases and skips dependents as their owner references and labels say", async (t) => {
  const api = new LocalApi({ serviceCidr: "10.201.250.0/24", clusterName: "claim-test", log: silentLogger });
  await api.start();
  t.after(() => api.close());
  const client = api.client();
  await client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "c" } });
  const owner = await client.create(Resources.configmaps, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "owner", namespace: "c" },
  });
  const ownedBy = (uid: string) => [{ apiVersion: "v1", kind: "ConfigMap", name: "x", uid, controller: true }];
  const dependent = async (name: string, app: string, ownerUid?: string) =>
    client.create(Resources.configmaps, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name,
        namespace: "c",
        labels: { app },
        ...(ownerUid ? { ownerReferences: ownedBy(ownerUid) } : {}),
      },
    });
  const uid = owner.metadata.uid ?? "";
  const kept = await dependent("kept", "web", uid);
  await dependent("released", "db", uid);
  await dependent("adopted", "web");
  await dependent("refused", "web");
  await dependent("foreign", "web", "someone-else");
  const all = (await client.list(Resources.configmaps, { namespace: "c" })).items;
  // A stale copy (old resourceVersion) of an orphan: its adoption conflicts (409) and is skipped.
  const stale: KubeObject = { ...(all.find((o) => o.metadata.name === "adopted") as KubeObject) };
  await client.patch(Resources.configmaps, "c", "adopted", "application/merge-patch+json", { data: { v: "1" } });
  const claim = (candidates: KubeObject[]) =>
    claimDependents(candidates, {
      client,
      resource: Resources.configmaps,
      owner,
      ownerApiVersion: "v1",
      ownerKind: "ConfigMap",
      selector: { matchLabels: { app: "web" } },
      mayAdopt: (o) => o.metadata.name !== "refused",
    });

  assert.deepEqual(await claim([stale]), []);
  const fresh = (await client.list(Resources.configmaps, { namespace: "c" })).items;
  const claimed = await claim(fresh);
  assert.deepEqual(claimed.map((o) => o.metadata.name).sort(), ["adopted", "kept"]);
  assert.equal(
    claimed.find((o) => o.metadata.name === "kept"),
    fresh.find((o) => o.metadata.uid === kept.metadata.uid),
  );
  const now = new Map(
    (await client.list(Resources.configmaps, { namespace: "c" })).items.map((o) => [o.metadata.name, o]),
  );
  assert.deepEqual(now.get("adopted")?.metadata.ownerReferences, [
    { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid, controller: true, blockOwnerDeletion: true },
  ]);
  assert.equal(now.get("released")?.metadata.ownerReferences, undefined);
  assert.equal(now.get("refused")?.metadata.ownerReferences, undefined);
  assert.equal(now.get("foreign")?.metadata.ownerReferences?.[0]?.uid, "someone-else");
});
