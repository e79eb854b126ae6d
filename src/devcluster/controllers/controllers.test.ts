/**
 * The controllers against the real in-memory API (LocalApi, no disk, no network, no node):
 * tests play the node's part where needed by patching pod status (podIP, Ready).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { type TestContext, test } from "node:test";
import { silentLogger } from "../../base/index.js";
import { type ApiClient, type KubeObject, type OwnerReference, type ResourceRef, Resources } from "../api/types.js";
import { LocalApi } from "../apiserver/index.js";
import { ServiceAccountTokens } from "../auth/tokens.js";
import { podTemplateHash } from "./hash.js";
import { startControllers } from "./index.js";
import type { Deployment, Pod, ReplicaSet } from "./objects.js";

const caPem = "-----BEGIN CERTIFICATE-----\nMIIBfakeForTests\n-----END CERTIFICATE-----\n";

interface Harness {
  api: LocalApi;
  client: ApiClient;
  tokens: ServiceAccountTokens;
}

async function setup(t: TestContext, before?: (api: LocalApi) => Promise<void>): Promise<Harness> {
  const api = new LocalApi({ serviceCidr: "10.201.250.0/24", clusterName: "ctl-test", log: silentLogger });
  await api.start();
  await before?.(api);
  const client = api.client();
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const tokens = new ServiceAccountTokens({
    signingKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client,
  });
  const ac = new AbortController();
  const running = await startControllers({
    client,
    clusterName: "ctl-test",
    rootCaPem: caPem,
    tokens,
    log: silentLogger,
    signal: ac.signal,
    discovery: () => api.resources.all(),
  });
  t.after(async () => {
    ac.abort();
    await running.done;
    await api.close();
  });
  return { api, client, tokens };
}

/**
 * Watches `ref` (in `namespace`) until `check` over the current objects returns a value;
 * fails after `timeoutMs` naming `what`. Event-driven: re-checks on every watch event.
 */
async function until<T>(
  client: ApiClient,
  ref: ResourceRef,
  namespace: string | undefined,
  what: string,
  check: (items: KubeObject[]) => T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out waiting for ${what}`)), timeoutMs);
  try {
    const list = await client.list(ref, { namespace });
    const items = new Map(list.items.map((o) => [o.metadata.uid ?? "", o]));
    const first = check([...items.values()]);
    if (first !== undefined) return first;
    for await (const ev of client.watch(ref, { namespace, resourceVersion: list.resourceVersion }, ac.signal)) {
      if (ev.type === "DELETED") items.delete(ev.object.metadata.uid ?? "");
      else if (ev.type === "ADDED" || ev.type === "MODIFIED") items.set(ev.object.metadata.uid ?? "", ev.object);
      const v = check([...items.values()]);
      if (v !== undefined) return v;
    }
    throw ac.signal.reason ?? new Error(`watch ended while waiting for ${what}`);
  } catch (err) {
    if (ac.signal.aborted) {
      const last = (await client.list(ref, { namespace })).items.map((o) => o.metadata.name);
      throw new Error(`timed out waiting for ${what}; objects now: ${JSON.stringify(last)}`, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

async function createNamespace(client: ApiClient, name: string): Promise<void> {
  await client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

function deployment(name: string, replicas: number, image = "docker.io/istio/examples-helloworld-v1:1.0"): Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "app", image, ports: [{ name: "http", containerPort: 5000 }] }] },
      },
    },
  };
}

const podsOf = (items: KubeObject[], prefix: string) =>
  (items as Pod[]).filter((p) => (p.metadata.name ?? "").startsWith(prefix) && !p.metadata.deletionTimestamp);

/** Plays the node: gives a pod an IP and a Ready condition. */
async function markReady(client: ApiClient, pod: KubeObject, ip: string): Promise<void> {
  await client.patch(
    Resources.pods,
    pod.metadata.namespace,
    pod.metadata.name ?? "",
    "application/merge-patch+json",
    {
      status: {
        phase: "Running",
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date().toISOString() }],
      },
    },
    { subresource: "status" },
  );
}

test("every namespace gets a default ServiceAccount and kube-root-ca.crt, recreated when deleted", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "alpha");
  await until(client, Resources.serviceaccounts, "alpha", "default SA", (items) =>
    items.find((o) => o.metadata.name === "default"),
  );
  const cm = await until(client, Resources.configmaps, "alpha", "kube-root-ca.crt", (items) =>
    items.find((o) => o.metadata.name === "kube-root-ca.crt"),
  );
  assert.deepEqual(cm.data, { "ca.crt": caPem });
  // Also the namespaces that existed before the controllers started.
  await until(client, Resources.serviceaccounts, "kube-system", "default SA in kube-system", (items) =>
    items.find((o) => o.metadata.name === "default"),
  );

  const oldUid = (await client.get(Resources.serviceaccounts, "alpha", "default")).metadata.uid;
  await client.delete(Resources.serviceaccounts, "alpha", "default");
  await client.delete(Resources.configmaps, "alpha", "kube-root-ca.crt");
  await until(client, Resources.serviceaccounts, "alpha", "default SA recreated", (items) =>
    items.find((o) => o.metadata.name === "default" && o.metadata.uid !== oldUid),
  );
  await until(client, Resources.configmaps, "alpha", "kube-root-ca.crt recreated", (items) =>
    items.find((o) => o.metadata.name === "kube-root-ca.crt"),
  );
  // Someone editing it gets it put back.
  const cur = await client.get(Resources.configmaps, "alpha", "kube-root-ca.crt");
  await client.update(Resources.configmaps, { ...cur, data: { "ca.crt": "tampered" } });
  await until(client, Resources.configmaps, "alpha", "kube-root-ca.crt restored", (items) =>
    items.find((o) => o.metadata.name === "kube-root-ca.crt" && (o.data as Record<string, string>)["ca.crt"] === caPem),
  );
});

test("a service-account token Secret is filled with a token the cluster accepts, ca.crt and namespace", async (t) => {
  const { client, tokens } = await setup(t);
  await createNamespace(client, "istio-system");
  const sa = await client.create(Resources.serviceaccounts, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "istio-reader-service-account", namespace: "istio-system" },
  });
  await client.create(Resources.secrets, {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/service-account-token",
    metadata: {
      name: "istio-reader-service-account-istio-remote-secret-token",
      namespace: "istio-system",
      annotations: { "kubernetes.io/service-account.name": "istio-reader-service-account" },
    },
  });
  const secret = await until(client, Resources.secrets, "istio-system", "filled token secret", (items) =>
    items.find((o) => (o.data as Record<string, string> | undefined)?.token),
  );
  const data = secret.data as Record<string, string>;
  const decode = (s: string | undefined) => Buffer.from(s ?? "", "base64").toString("utf8");
  assert.equal(decode(data["ca.crt"]), caPem);
  assert.equal(decode(data.namespace), "istio-system");
  assert.equal(secret.metadata.annotations?.["kubernetes.io/service-account.uid"], sa.metadata.uid);
  const verified = await tokens.verify(decode(data.token));
  assert.ok(verified.ok, JSON.stringify(verified));
  assert.equal(verified.user.username, "system:serviceaccount:istio-system:istio-reader-service-account");

  // Deleting the ServiceAccount takes its token Secret with it.
  await client.delete(Resources.serviceaccounts, "istio-system", "istio-reader-service-account");
  await until(client, Resources.secrets, "istio-system", "token secret deleted", (items) =>
    items.some((o) => o.metadata.name === secret.metadata.name) ? undefined : true,
  );
});

test("a Deployment makes a ReplicaSet <name>-<hash> and N pods <rs>-<suffix> with labels and owners; status follows", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "sample");
  const d = (await client.create(Resources.deployments, {
    ...deployment("helloworld-v1", 2),
    metadata: { name: "helloworld-v1", namespace: "sample" },
  })) as Deployment;
  const rs = (await until(client, Resources.replicasets, "sample", "replica set", (items) => items[0])) as ReplicaSet;
  const hash = rs.metadata.labels?.["pod-template-hash"] ?? "";
  assert.match(hash, /^[456789bcdf]{1,10}$/);
  assert.equal(hash, podTemplateHash(d.spec?.template, undefined));
  assert.equal(rs.metadata.name, `helloworld-v1-${hash}`);
  assert.equal(rs.spec?.selector?.matchLabels?.["pod-template-hash"], hash);
  assert.equal(rs.metadata.annotations?.["deployment.kubernetes.io/revision"], "1");
  assert.deepEqual(rs.metadata.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "helloworld-v1",
      uid: d.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  const pods = await until(client, Resources.pods, "sample", "2 pods", (items) => {
    const ps = podsOf(items, `${rs.metadata.name}-`);
    return ps.length === 2 ? ps : undefined;
  });
  for (const p of pods) {
    assert.match(p.metadata.name ?? "", new RegExp(`^helloworld-v1-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
    assert.equal(p.metadata.labels?.["pod-template-hash"], hash);
    assert.equal(p.metadata.labels?.app, "helloworld-v1");
    assert.equal(p.metadata.ownerReferences?.[0]?.uid, rs.metadata.uid);
    assert.equal(p.metadata.ownerReferences?.[0]?.kind, "ReplicaSet");
    assert.equal(p.metadata.ownerReferences?.[0]?.controller, true);
  }
  await markReady(client, pods[0]!, "10.200.0.11");
  await markReady(client, pods[1]!, "10.200.0.12");
  const done = await until(client, Resources.deployments, "sample", "deployment status", (items) => {
    const x = items[0] as Deployment | undefined;
    return x?.status?.availableReplicas === 2 &&
      x.status.conditions?.find((c) => c.type === "Progressing")?.reason === "NewReplicaSetAvailable"
      ? x
      : undefined;
  });
  assert.equal(done.status?.replicas, 2);
  assert.equal(done.status?.updatedReplicas, 2);
  assert.equal(done.status?.readyReplicas, 2);
  assert.equal(done.status?.observedGeneration, done.metadata.generation);
  assert.equal(done.metadata.annotations?.["deployment.kubernetes.io/revision"], "1");
  assert.equal(done.status?.conditions?.find((c) => c.type === "Available")?.status, "True");
  const rsNow = (await client.get(Resources.replicasets, "sample", rs.metadata.name ?? "")) as ReplicaSet;
  assert.deepEqual(
    { ...rsNow.status, conditions: undefined },
    {
      replicas: 2,
      fullyLabeledReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      observedGeneration: rsNow.metadata.generation,
      conditions: undefined,
    },
  );
  const events = await until(client, Resources.events, "sample", "events", (items) => {
    const reasons = new Set(items.map((e) => e.reason));
    return reasons.has("ScalingReplicaSet") && reasons.has("SuccessfulCreate") ? items : undefined;
  });
  const scaling = events.find((e) => e.reason === "ScalingReplicaSet");
  assert.equal(scaling?.message, `Scaled up replica set ${rs.metadata.name} from 0 to 2`);
  assert.ok(scaling, "a ScalingReplicaSet event");
  assert.equal((scaling.involvedObject as { name?: string }).name, "helloworld-v1");
});

test("scaling 1 -> 3 -> 1, and a deleted pod comes back", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "scale");
  await client.create(Resources.deployments, {
    ...deployment("web", 1),
    metadata: { name: "web", namespace: "scale" },
  });
  const one = await until(client, Resources.pods, "scale", "1 pod", (items) =>
    podsOf(items, "web-").length === 1 ? podsOf(items, "web-") : undefined,
  );
  await client.patch(Resources.deployments, "scale", "web", "application/merge-patch+json", { spec: { replicas: 3 } });
  const three = await until(client, Resources.pods, "scale", "3 pods", (items) =>
    podsOf(items, "web-").length === 3 ? podsOf(items, "web-") : undefined,
  );
  assert.ok(
    three.some((p) => p.metadata.uid === one[0]?.metadata.uid),
    "scaling up keeps the existing pod",
  );
  assert.equal(new Set(three.map((p) => p.metadata.labels?.["pod-template-hash"])).size, 1);
  // The ready pod is kept when scaling down: unready ones go first.
  const keeper = three[1]!;
  await markReady(client, keeper, "10.200.0.21");
  await client.patch(Resources.deployments, "scale", "web", "application/merge-patch+json", { spec: { replicas: 1 } });
  const left = await until(client, Resources.pods, "scale", "1 pod left", (items) => {
    const ps = podsOf(items, "web-");
    return ps.length === 1 && items.length === 1 ? ps : undefined;
  });
  assert.equal(left[0]?.metadata.uid, keeper.metadata.uid);

  await client.delete(Resources.pods, "scale", keeper.metadata.name ?? "");
  const replacement = await until(client, Resources.pods, "scale", "replacement pod", (items) => {
    const ps = podsOf(items, "web-");
    return ps.length === 1 && ps[0]?.metadata.uid !== keeper.metadata.uid ? ps[0] : undefined;
  });
  assert.equal(replacement.metadata.labels?.["pod-template-hash"], keeper.metadata.labels?.["pod-template-hash"]);
});

test("a template change rolls out a new ReplicaSet and scales the old one to 0", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "roll");
  await client.create(Resources.deployments, { ...deployment("app", 2), metadata: { name: "app", namespace: "roll" } });
  const rs1 = (await until(client, Resources.replicasets, "roll", "first rs", (items) => items[0])) as ReplicaSet;
  const ready = new Set<string>();
  let ip = 30;
  // Play the node: every pod that appears becomes Ready, so the rollout can make progress.
  const ac = new AbortController();
  t.after(() => ac.abort());
  void (async () => {
    const list = await client.list(Resources.pods, { namespace: "roll" });
    const pending = [...list.items];
    for (const p of pending)
      if (!ready.has(p.metadata.uid ?? "")) {
        ready.add(p.metadata.uid ?? "");
        await markReady(client, p, `10.200.0.${ip++}`);
      }
    try {
      for await (const ev of client.watch(
        Resources.pods,
        { namespace: "roll", resourceVersion: list.resourceVersion },
        ac.signal,
      )) {
        if (ev.type !== "ADDED" || ready.has(ev.object.metadata.uid ?? "")) continue;
        ready.add(ev.object.metadata.uid ?? "");
        await markReady(client, ev.object, `10.200.0.${ip++}`).catch(() => {});
      }
    } catch {
      // aborted at test end
    }
  })();
  await until(client, Resources.deployments, "roll", "first rollout complete", (items) =>
    (items[0] as Deployment | undefined)?.status?.availableReplicas === 2 ? true : undefined,
  );
  await client.patch(Resources.deployments, "roll", "app", "application/merge-patch+json", {
    spec: {
      template: { spec: { containers: [{ name: "app", image: "docker.io/istio/examples-helloworld-v2:1.0" }] } },
    },
  });
  const rss = await until(client, Resources.replicasets, "roll", "new rs owning every pod", (items) => {
    const rsList = items as ReplicaSet[];
    const next = rsList.find((r) => r.metadata.uid !== rs1.metadata.uid);
    const old = rsList.find((r) => r.metadata.uid === rs1.metadata.uid);
    return next?.status?.availableReplicas === 2 && old?.spec?.replicas === 0 && old.status?.replicas === 0
      ? { next, old }
      : undefined;
  });
  assert.notEqual(rss.next.metadata.name, rs1.metadata.name);
  assert.match(rss.next.metadata.name ?? "", /^app-[456789bcdf]{1,10}$/);
  assert.equal(rss.next.metadata.annotations?.["deployment.kubernetes.io/revision"], "2");
  const d = await until(client, Resources.deployments, "roll", "deployment revision 2 complete", (items) => {
    const x = items[0] as Deployment | undefined;
    return x?.metadata.annotations?.["deployment.kubernetes.io/revision"] === "2" &&
      x.status?.updatedReplicas === 2 &&
      x.status.replicas === 2
      ? x
      : undefined;
  });
  assert.equal(d.status?.availableReplicas, 2);
  const pods = (await client.list(Resources.pods, { namespace: "roll" })).items.filter(
    (p) => !p.metadata.deletionTimestamp,
  );
  assert.ok(
    pods.every((p) => p.metadata.labels?.["pod-template-hash"] === rss.next.metadata.labels?.["pod-template-hash"]),
  );
});

test("an orphaned ReplicaSet and its pods are adopted back; a relabelled pod is released and replaced", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "adopt");
  await client.create(Resources.deployments, { ...deployment("ad", 2), metadata: { name: "ad", namespace: "adopt" } });
  const pods = await until(client, Resources.pods, "adopt", "2 pods", (items) =>
    items.length === 2 ? items : undefined,
  );
  const rs = (await client.list(Resources.replicasets, { namespace: "adopt" })).items[0] as ReplicaSet;
  // kubectl delete --cascade=orphan: the Deployment goes, its ReplicaSet stays without an owner.
  await client.delete(Resources.deployments, "adopt", "ad", { propagationPolicy: "Orphan" });
  await until(client, Resources.deployments, "adopt", "deployment gone", (items) =>
    items.length === 0 ? true : undefined,
  );
  const orphaned = await client.get(Resources.replicasets, "adopt", rs.metadata.name ?? "");
  assert.deepEqual(orphaned.metadata.ownerReferences ?? [], []);
  const d2 = await client.create(Resources.deployments, {
    ...deployment("ad", 2),
    metadata: { name: "ad", namespace: "adopt" },
  });
  const adopted = await until(client, Resources.replicasets, "adopt", "rs adopted by the new Deployment", (items) =>
    items.length === 1 && items[0]?.metadata.ownerReferences?.[0]?.uid === d2.metadata.uid ? items[0] : undefined,
  );
  assert.equal(adopted.metadata.uid, rs.metadata.uid, "the same ReplicaSet, not a new one");
  const samePods = (await client.list(Resources.pods, { namespace: "adopt" })).items;
  assert.deepEqual(samePods.map((p) => p.metadata.uid).sort(), pods.map((p) => p.metadata.uid).sort());

  // Relabelling a pod out of the selector releases it, and the ReplicaSet makes a replacement.
  const victim = pods[0]!;
  await client.patch(Resources.pods, "adopt", victim.metadata.name ?? "", "application/merge-patch+json", {
    metadata: { labels: { app: "debugging" } },
  });
  const after = await until(client, Resources.pods, "adopt", "released pod and a replacement", (items) => {
    const released = items.find((p) => p.metadata.uid === victim.metadata.uid);
    const members = items.filter((p) => p.metadata.labels?.app === "ad");
    return released && (released.metadata.ownerReferences ?? []).length === 0 && members.length === 2
      ? items
      : undefined;
  });
  assert.equal(after.length, 3);
});

test("EndpointSlice and Endpoints list the selected pods with IPs, ready as the pod says, target ports resolved", async (t) => {
  // The API server's own `kubernetes` Service has no selector: its slice and Endpoints are not ours to touch.
  const { client } = await setup(t, (api) => api.ensureKubernetesService({ ip: "10.200.0.1", port: 6443 }));
  const kubernetesSlice = await client.get(Resources.endpointslices, "default", "kubernetes");
  await createNamespace(client, "svc");
  const svc = await client.create(Resources.services, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "helloworld", namespace: "svc", labels: { app: "helloworld", service: "helloworld" } },
    spec: {
      selector: { app: "helloworld" },
      ports: [
        { name: "http", port: 5000, targetPort: "web" },
        { name: "metrics", port: 9090, targetPort: 15090 },
      ],
    },
  });
  const pod = (name: string, containerPort: number): KubeObject => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "svc", labels: { app: "helloworld" } },
    spec: {
      containers: [
        { name: "c", image: "docker.io/istio/examples-helloworld-v1:1.0", ports: [{ name: "web", containerPort }] },
      ],
    },
  });
  const a = await client.create(Resources.pods, pod("hw-a", 5000));
  const b = await client.create(Resources.pods, pod("hw-b", 5000));
  await client.create(Resources.pods, {
    ...pod("other", 5000),
    metadata: { name: "other", namespace: "svc", labels: { app: "other" } },
  });

  // Before any pod has an IP: one slice, no endpoints, owned by the Service.
  const empty = await until(client, Resources.endpointslices, "svc", "placeholder slice", (items) => items[0]);
  assert.match(empty.metadata.name ?? "", /^helloworld-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  assert.equal(empty.metadata.labels?.["kubernetes.io/service-name"], "helloworld");
  assert.equal(empty.metadata.labels?.["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
  assert.equal(empty.metadata.ownerReferences?.[0]?.uid, svc.metadata.uid);
  assert.equal(empty.addressType, "IPv4");

  await markReady(client, a, "10.200.0.41");
  // b has an IP but is not ready.
  await client.patch(
    Resources.pods,
    "svc",
    "hw-b",
    "application/merge-patch+json",
    { status: { phase: "Running", podIP: "10.200.0.42" } },
    { subresource: "status" },
  );
  type Ep = {
    addresses: string[];
    conditions: { ready: boolean; serving: boolean; terminating: boolean };
    targetRef: { name: string; uid: string };
  };
  const slice = await until(client, Resources.endpointslices, "svc", "slice with both pods", (items) => {
    const s = items.find((o) => (o.endpoints as Ep[] | undefined)?.length === 2);
    return s;
  });
  assert.equal((await client.list(Resources.endpointslices, { namespace: "svc" })).items.length, 1);
  const eps = slice.endpoints as Ep[];
  const ea = eps.find((e) => e.targetRef.name === "hw-a");
  const eb = eps.find((e) => e.targetRef.name === "hw-b");
  assert.deepEqual(ea?.addresses, ["10.200.0.41"]);
  assert.deepEqual(ea?.conditions, { ready: true, serving: true, terminating: false });
  assert.equal(ea?.targetRef.uid, a.metadata.uid);
  assert.deepEqual(eb?.conditions, { ready: false, serving: false, terminating: false });
  assert.equal(eb?.targetRef.uid, b.metadata.uid);
  assert.deepEqual(
    (slice.ports as { name: string; port: number; protocol: string }[]).map((p) => [p.name, p.port, p.protocol]).sort(),
    [
      ["http", 5000, "TCP"],
      ["metrics", 15090, "TCP"],
    ],
  );

  const endpoints = await until(client, Resources.endpoints, "svc", "Endpoints object", (items) =>
    items.find((o) => o.metadata.name === "helloworld" && Array.isArray(o.subsets) && o.subsets.length > 0),
  );
  const subset = (endpoints.subsets as { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[])[0];
  assert.deepEqual(
    subset?.addresses?.map((x) => x.ip),
    ["10.200.0.41"],
  );
  assert.deepEqual(
    subset?.notReadyAddresses?.map((x) => x.ip),
    ["10.200.0.42"],
  );

  // A pod whose named port maps elsewhere gets a slice of its own port list.
  const c = await client.create(Resources.pods, pod("hw-c", 8080));
  await markReady(client, c, "10.200.0.43");
  const slices = await until(client, Resources.endpointslices, "svc", "second slice for port 8080", (items) =>
    items.length === 2 ? items : undefined,
  );
  const forC = slices.find((s) => (s.endpoints as Ep[]).some((e) => e.targetRef.name === "hw-c"));
  assert.ok(forC, "a slice for hw-c");
  assert.deepEqual((forC.endpoints as Ep[]).length, 1);
  assert.ok((forC.ports as { name: string; port: number }[]).some((p) => p.name === "http" && p.port === 8080));

  const kubernetesNow = await client.get(Resources.endpointslices, "default", "kubernetes");
  assert.equal(kubernetesNow.metadata.resourceVersion, kubernetesSlice.metadata.resourceVersion);
  assert.ok((await client.get(Resources.endpoints, "default", "kubernetes")).subsets);

  // Deleting the Service takes its slices (garbage collection) and its Endpoints.
  await client.delete(Resources.services, "svc", "helloworld");
  await until(client, Resources.endpointslices, "svc", "slices gone", (items) =>
    items.length === 0 ? true : undefined,
  );
  await until(client, Resources.endpoints, "svc", "endpoints gone", (items) =>
    items.some((o) => o.metadata.name === "helloworld") ? undefined : true,
  );
});

/** The owner reference to a ConfigMap (the owners in the garbage collection tests). */
function ownerRef(o: KubeObject): OwnerReference {
  return { apiVersion: "v1", kind: "ConfigMap", name: o.metadata.name ?? "", uid: o.metadata.uid ?? "" };
}

function createConfigMap(client: ApiClient, metadata: KubeObject["metadata"]): Promise<KubeObject> {
  return client.create(Resources.configmaps, { apiVersion: "v1", kind: "ConfigMap", metadata });
}

function createSecret(client: ApiClient, metadata: KubeObject["metadata"]): Promise<KubeObject> {
  return client.create(Resources.secrets, { apiVersion: "v1", kind: "Secret", metadata });
}

test("garbage collection deletes objects whose owners are gone, and keeps those with a live owner", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "gc");
  const owner = await createConfigMap(client, { name: "owner", namespace: "gc" });
  const other = await createConfigMap(client, { name: "other", namespace: "gc" });
  await createSecret(client, { name: "dep", namespace: "gc", ownerReferences: [ownerRef(owner)] });
  await createSecret(client, {
    name: "two-owners",
    namespace: "gc",
    ownerReferences: [ownerRef(owner), ownerRef(other)],
  });
  // Names an owner uid that never existed: an orphan from the start.
  await createSecret(client, {
    name: "orphan",
    namespace: "gc",
    ownerReferences: [
      { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: "00000000-0000-0000-0000-000000000000" },
    ],
  });
  await until(client, Resources.secrets, "gc", "orphan collected", (items) =>
    items.some((o) => o.metadata.name === "orphan") ? undefined : true,
  );
  const names = (await client.list(Resources.secrets, { namespace: "gc" })).items.map((o) => o.metadata.name);
  assert.ok(names.includes("dep") && names.includes("two-owners"), `live owner keeps dependents: ${names}`);

  await client.delete(Resources.configmaps, "gc", "owner");
  const left = await until(client, Resources.secrets, "gc", "dependent collected and reference dropped", (items) => {
    const two = items.find((o) => o.metadata.name === "two-owners");
    return !items.some((o) => o.metadata.name === "dep") && two?.metadata.ownerReferences?.length === 1
      ? two
      : undefined;
  });
  assert.equal(left.metadata.ownerReferences?.[0]?.uid, other.metadata.uid);

  // Deleting a Deployment takes its ReplicaSet and pods (Background propagation).
  await client.create(Resources.deployments, { ...deployment("gone", 2), metadata: { name: "gone", namespace: "gc" } });
  await until(client, Resources.pods, "gc", "2 pods", (items) => (items.length === 2 ? true : undefined));
  await client.delete(Resources.deployments, "gc", "gone", { propagationPolicy: "Background" });
  await until(client, Resources.pods, "gc", "pods collected", (items) => (items.length === 0 ? true : undefined));
  await until(client, Resources.replicasets, "gc", "rs collected", (items) => (items.length === 0 ? true : undefined));
});

test("foreground deletion waits for dependents; orphan deletion leaves them without the reference", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "prop");
  const ref = (o: KubeObject) => ({ ...ownerRef(o), blockOwnerDeletion: true });
  // What the API server does for propagationPolicy=Foreground/Orphan: a finalizer on the owner.
  const fg = await createConfigMap(client, { name: "fg", namespace: "prop", finalizers: ["foregroundDeletion"] });
  const orphaner = await createConfigMap(client, { name: "orphaner", namespace: "prop", finalizers: ["orphan"] });
  await createSecret(client, { name: "fg-dep", namespace: "prop", ownerReferences: [ref(fg)] });
  await createSecret(client, { name: "orphan-dep", namespace: "prop", ownerReferences: [ref(orphaner)] });
  await client.delete(Resources.configmaps, "prop", "fg");
  await client.delete(Resources.configmaps, "prop", "orphaner");
  await until(client, Resources.configmaps, "prop", "both owners gone", (items) =>
    items.some((o) => o.metadata.name === "fg" || o.metadata.name === "orphaner") ? undefined : true,
  );
  const secrets = (await client.list(Resources.secrets, { namespace: "prop" })).items;
  assert.ok(!secrets.some((o) => o.metadata.name === "fg-dep"), "the foreground owner's dependent went first");
  const kept = secrets.find((o) => o.metadata.name === "orphan-dep");
  assert.ok(kept, "the orphaned dependent stays");
  assert.deepEqual(kept.metadata.ownerReferences ?? [], []);

  // kubectl delete --cascade=foreground on a Deployment: pods, then the ReplicaSet, then the Deployment.
  await client.create(Resources.deployments, { ...deployment("fgd", 2), metadata: { name: "fgd", namespace: "prop" } });
  await until(client, Resources.pods, "prop", "2 pods", (items) => (items.length === 2 ? true : undefined));
  let sawDeploymentWithoutPods = false;
  const ac = new AbortController();
  t.after(() => ac.abort());
  const list = await client.list(Resources.deployments, { namespace: "prop" });
  const watching = (async () => {
    try {
      for await (const ev of client.watch(
        Resources.deployments,
        { namespace: "prop", resourceVersion: list.resourceVersion },
        ac.signal,
      )) {
        if (ev.type !== "DELETED") continue;
        const pods = (await client.list(Resources.pods, { namespace: "prop" })).items;
        sawDeploymentWithoutPods = pods.length === 0;
        return;
      }
    } catch {
      // aborted
    }
  })();
  await client.delete(Resources.deployments, "prop", "fgd", { propagationPolicy: "Foreground" });
  await watching;
  assert.ok(sawDeploymentWithoutPods, "the Deployment went only after its pods");
  assert.equal((await client.list(Resources.replicasets, { namespace: "prop" })).items.length, 0);
});

test("a Recreate Deployment removes every old pod before the new ReplicaSet gets any", async (t) => {
  const { client } = await setup(t);
  await createNamespace(client, "recreate");
  const d = deployment("rc", 2);
  d.metadata.namespace = "recreate";
  d.spec!.strategy = { type: "Recreate" };
  await client.create(Resources.deployments, d);
  const first = await until(client, Resources.pods, "recreate", "2 pods", (items) =>
    items.length === 2 ? items : undefined,
  );
  const oldHash = first[0]?.metadata.labels?.["pod-template-hash"];
  // Old pods linger while terminating (as on a node, with a grace period): a finalizer holds them.
  for (const p of first) {
    await client.patch(Resources.pods, "recreate", p.metadata.name ?? "", "application/merge-patch+json", {
      metadata: { finalizers: ["test.isthmus.dev/hold"] },
    });
  }
  // Watch the whole rollout: no moment may have old and new pods side by side.
  const ac = new AbortController();
  t.after(() => ac.abort());
  const list = await client.list(Resources.pods, { namespace: "recreate" });
  const live = new Map(list.items.map((p) => [p.metadata.uid ?? "", p]));
  let overlap = false;
  const watching = (async () => {
    try {
      for await (const ev of client.watch(
        Resources.pods,
        { namespace: "recreate", resourceVersion: list.resourceVersion },
        ac.signal,
      )) {
        if (ev.type === "DELETED") live.delete(ev.object.metadata.uid ?? "");
        else live.set(ev.object.metadata.uid ?? "", ev.object);
        const hashes = new Set([...live.values()].map((p) => p.metadata.labels?.["pod-template-hash"]));
        if (hashes.size > 1) overlap = true;
      }
    } catch {
      // aborted at the end
    }
  })();
  await client.patch(Resources.deployments, "recreate", "rc", "application/merge-patch+json", {
    spec: { template: { metadata: { labels: { app: "rc", rev: "2" } } } },
  });
  const terminating = await until(client, Resources.pods, "recreate", "old pods terminating", (items) =>
    items.length === 2 && items.every((p) => p.metadata.deletionTimestamp) ? items : undefined,
  );
  // The pass that saw the old ReplicaSet drained (its status 0) has written the Deployment's status;
  // a controller that did not wait would have scaled a new ReplicaSet up in that very pass.
  await until(client, Resources.deployments, "recreate", "deployment status 0 replicas", (items) => {
    const x = items[0] as Deployment | undefined;
    return x?.status?.replicas === 0 && x.status.observedGeneration === x.metadata.generation ? true : undefined;
  });
  const rsNow = (await client.list(Resources.replicasets, { namespace: "recreate" })).items as ReplicaSet[];
  assert.ok(
    rsNow.every((r) => (r.spec?.replicas ?? 0) === 0),
    "no ReplicaSet may want pods while old ones terminate",
  );
  for (const p of terminating) {
    await client.patch(Resources.pods, "recreate", p.metadata.name ?? "", "application/merge-patch+json", {
      metadata: { finalizers: null },
    });
  }
  await until(client, Resources.pods, "recreate", "2 new pods", (items) =>
    items.length === 2 && items.every((p) => p.metadata.labels?.["pod-template-hash"] !== oldHash) ? true : undefined,
  );
  ac.abort();
  await watching;
  assert.equal(overlap, false, "old and new pods existed at the same time");
});

test("deleting a namespace drains it, custom resources included, then the namespace goes", async (t) => {
  const { client } = await setup(t);
  await client.create(Resources.customresourcedefinitions, {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "widgets.example.com" },
    spec: {
      group: "example.com",
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  });
  await createNamespace(client, "doomed");
  const widgets = { group: "example.com", version: "v1", resource: "widgets" };
  await client.create(widgets, {
    apiVersion: "example.com/v1",
    kind: "Widget",
    metadata: { name: "w1", namespace: "doomed" },
  });
  await client.create(Resources.deployments, { ...deployment("d", 2), metadata: { name: "d", namespace: "doomed" } });
  await client.create(Resources.configmaps, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cm", namespace: "doomed" },
  });
  await until(client, Resources.pods, "doomed", "2 pods", (items) => (items.length === 2 ? true : undefined));
  await until(client, Resources.serviceaccounts, "doomed", "default SA", (items) =>
    items.length > 0 ? true : undefined,
  );

  await client.delete(Resources.namespaces, undefined, "doomed");
  await until(client, Resources.namespaces, undefined, "namespace gone", (items) =>
    items.some((o) => o.metadata.name === "doomed") ? undefined : true,
  );
  for (const ref of [
    widgets,
    Resources.pods,
    Resources.replicasets,
    Resources.deployments,
    Resources.configmaps,
    Resources.serviceaccounts,
  ]) {
    const left = await client.list(ref, { namespace: "doomed" });
    assert.equal(left.items.length, 0, `${ref.resource} left in doomed: ${left.items.map((o) => o.metadata.name)}`);
  }
  // The controllers do not bring anything back into a namespace that is gone.
  await assert.rejects(
    client.get(Resources.serviceaccounts, "doomed", "default"),
    (err: { code?: number }) => err.code === 404,
  );
});
