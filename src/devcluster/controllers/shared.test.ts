import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../base/index.js";
import { isApiError, Resources } from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { deleteExactly } from "./shared.js";

test("deleteExactly deletes the object it was given, spares a namesake, and shrugs at gone ones", async (t) => {
  const api = new LocalApi({ serviceCidr: "10.201.250.0/24", clusterName: "shared-test", log: silentLogger });
  await api.start();
  t.after(() => api.close());
  const client = api.client();
  await client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "d" } });
  const cm = (name: string) =>
    client.create(Resources.configmaps, { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "d" } });
  const first = await cm("a");
  await deleteExactly(client, { ref: Resources.configmaps, obj: first });
  await assert.rejects(client.get(Resources.configmaps, "d", "a"), (err) => isApiError(err, 404));
  // Already gone (404): nothing to do.
  await deleteExactly(client, { ref: Resources.configmaps, obj: first });
  // A namesake created since has another uid (409): it stays.
  const second = await cm("a");
  await deleteExactly(client, { ref: Resources.configmaps, obj: first });
  assert.equal((await client.get(Resources.configmaps, "d", "a")).metadata.uid, second.metadata.uid);
});
