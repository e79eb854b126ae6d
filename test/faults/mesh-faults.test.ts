// The fault suite of issue 8 on the guide's two clusters, brought up once for the whole file:
// steady traffic runs from both sleep pods all along, each case injects one fault (or one
// attack, or one piece of bad input), asserts what a user must see, and states the requests
// that failed in its window. Cases run in order: the security checks (concurrently), cluster2's
// API server stopped for 60 s with the bad-input cases fed meanwhile (concurrently), the other
// faults, then the ones that change the mesh for good (mismatched roots), then the log audit.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type ClusterzEntry,
  clusterNetns,
  clusterz,
  controlSocket,
  cutPodLink,
  guideClusters,
  helloworldCounter,
  httpGet,
  istiodDebug,
  must,
  onePod,
  type PodInfo,
  podCidr,
  podNetns,
  pods,
  proxyHosts,
  setUpGuideClusters,
  summarize,
  Traffic,
  timedRequest,
  waitFor,
} from "../support/guide-clusters.js";
import {
  createCertificate,
  csrFor,
  csrWithKey,
  foreignCertificate,
  rawExchange,
  tlsProbe,
  uriSans,
} from "../support/mesh-probes.js";
import { leftovers, type Sandbox, sandbox } from "../support/shell.js";

const root = process.getuid?.() === 0;

interface SleepSide {
  readonly ctx: string;
  pod: PodInfo;
  netns: string;
  traffic: Traffic;
}

describe("fault suite on the guide's two clusters", { skip: root ? false : "local clusters need root" }, () => {
  let sb: Sandbox;
  const sides = new Map<string, SleepSide>();
  const tags = new Set<string>();
  let rerootedV2: PodInfo | undefined;
  let rerootedAt = 0;
  const side = (ctx: string): SleepSide => {
    const s = sides.get(ctx);
    if (s === undefined) throw new Error(`no sleep pod recorded for ${ctx}`);
    return s;
  };

  // ISTHMUS_FAULTS_REUSE=<folder where `isthmus demo --work-dir <folder>/work` ran with
  // ISTHMUS_HOME=<folder>/home, KUBECONFIG=<folder>/kubeconfig>: run against those clusters and
  // leave them up (a development loop; the guide takes minutes to come up).
  const reuse = process.env.ISTHMUS_FAULTS_REUSE;
  let dir = "";

  before(
    async () => {
      sb = sandbox("faults");
      dir = sb.dir;
      if (reuse) {
        Object.assign(sb.env, {
          ISTHMUS_HOME: join(reuse, "home"),
          KUBECONFIG: join(reuse, "kubeconfig"),
          HOME: reuse,
        });
        dir = reuse;
      } else await setUpGuideClusters(sb);
      for (const ctx of guideClusters) {
        const pod = await onePod(sb, ctx, "sample", "app=sleep");
        const netns = await podNetns(sb, pod.ip);
        // isth-<tag>-<n>: the tag names every kernel object of this cluster.
        const tag = netns.split("-")[1];
        if (tag) tags.add(tag);
        const traffic = new Traffic(sb, netns);
        traffic.start();
        sides.set(ctx, { ctx, pod, netns, traffic });
      }
    },
    { timeout: 1_200_000 },
  );

  after(
    async () => {
      for (const s of sides.values()) await s.traffic.stop();
      if (reuse) return sb?.cleanup([]);
      await sb?.cleanup([...guideClusters]);
      const check = sandbox("faults-check");
      const left = await leftovers(check, [...tags]);
      await check.cleanup([]);
      assert.deepEqual(left, [], `kernel objects of the deleted clusters remain:\n${left.join("\n")}`);
    },
    { timeout: 300_000 },
  );

  /** Traffic from both sleep pods in [from, to): each side's summary, for the report and asserts. */
  const window = (from: number, to = Date.now()) =>
    new Map(guideClusters.map((ctx) => [ctx, summarize(side(ctx).traffic.between(from, to))] as const));

  /** `${ip}:5000` of every running helloworld pod in both clusters. */
  /** The istio-reader-service-account's token in `ctx` (the remote secret's token Secret). */
  const readerToken = async (ctx: string): Promise<string> =>
    Buffer.from(
      await must(
        sb,
        `kubectl --context=${ctx} -n istio-system get secret istio-reader-service-account-istio-remote-secret-token -o jsonpath='{.data.token}'`,
      ),
      "base64",
    ).toString();
  const helloworldAddresses = async (): Promise<string[]> => {
    const all: string[] = [];
    for (const ctx of guideClusters)
      for (const p of await pods(sb, ctx, "sample", "app=helloworld"))
        if (p.phase === "Running" && !p.deleting && p.ip) all.push(`${p.ip}:5000`);
    return all.sort();
  };

  /** Waits until both sleep proxies hold exactly the helloworld pods that exist; returns them. */
  const endpointsConverge = async (timeoutMs: number): Promise<string[]> =>
    waitFor(
      "both sleep proxies to hold exactly the helloworld pods that exist",
      async () => {
        const want = await helloworldAddresses();
        for (const ctx of guideClusters) {
          const got = (await proxyHosts(sb, side(ctx).netns)).map((h) => h.address).sort();
          if (JSON.stringify(got) !== JSON.stringify(want)) return undefined;
        }
        return want;
      },
      timeoutMs,
    );

  it("starts with both versions answering from both clusters and every endpoint in both proxies", async (t) => {
    const t0 = Date.now();
    await waitFor(
      "answers from v1 and v2 on both sides",
      async () => {
        for (const ctx of guideClusters) {
          const got = side(ctx).traffic.between(t0);
          if (!got.some((s) => s.version === "v1") || !got.some((s) => s.version === "v2")) return undefined;
        }
        return true;
      },
      60_000,
    );
    const eps = await endpointsConverge(60_000);
    assert.equal(eps.length, 2, `expected one v1 and one v2 endpoint: ${eps.join(", ")}`);
    for (const [ctx, s] of window(t0)) t.diagnostic(`${ctx}: ${s.text}`);
  });

  // ---------------------------------------------------------------- security
  describe("security", { concurrency: true }, () => {
    // A real sidecar with the wrong cluster ID: sleep's own injected pod, copied with
    // ISTIO_META_CLUSTER_ID=cluster9 (the injector skips it: it carries the injection status).
    // Created before the checks below so that it boots (seconds under load) while they run.
    let wrongClusterPod: Promise<{ name: string; createdAt: number }> = Promise.resolve({ name: "", createdAt: 0 });
    const startWrongClusterPod = async (): Promise<{ name: string; createdAt: number }> => {
      const name = "sleep-cluster9";
      const src = JSON.parse(
        await must(sb, `kubectl --context=cluster1 -n sample get pod ${side("cluster1").pod.name} -o json`),
      ) as {
        metadata: { annotations?: Record<string, string> };
        spec: { nodeName?: string; containers: { name: string; env?: { name: string; value?: string }[] }[] };
      };
      const env = src.spec.containers
        .find((c) => c.name === "istio-proxy")
        ?.env?.find((e) => e.name === "ISTIO_META_CLUSTER_ID");
      if (env === undefined) throw new Error("sleep's sidecar has no ISTIO_META_CLUSTER_ID to change");
      env.value = "cluster9";
      delete src.spec.nodeName;
      const manifest = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "sample", labels: { app: name }, annotations: src.metadata.annotations ?? {} },
        spec: src.spec,
      };
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(manifest));
      const createdAt = Date.now();
      await must(sb, `kubectl --context=cluster1 create -f ${file}`);
      return { name, createdAt };
    };
    before(() => {
      wrongClusterPod = startWrongClusterPod();
      // Awaited (and its error reported) by the test that uses it.
      wrongClusterPod.catch(() => {});
    });
    const serverOf = async (ctx: string) =>
      (
        await must(sb, `kubectl config view --raw -o jsonpath='{.clusters[?(@.name=="${ctx}")].cluster.server}'`)
      ).trim();
    const tokenOf = async (ctx: string, sa: string, ns: string) =>
      (await must(sb, `kubectl --context=${ctx} -n ${ns} create token ${sa} --audience istio-ca`)).trim();
    const caOf = async (ctx: string) => {
      const istiod = await onePod(sb, ctx, "istio-system", "app=istiod");
      return {
        caAddress: `${istiod.ip}:15012`,
        caRootPem: readFileSync(join(dir, "work", "certs", "root-cert.pem"), "utf8"),
        serverName: "istiod.istio-system.svc",
      };
    };

    it("the API servers refuse anonymous requests (401)", async () => {
      for (const ctx of guideClusters) {
        const server = await serverOf(ctx);
        for (const path of ["/api/v1/namespaces", "/api/v1/namespaces/istio-system/secrets"]) {
          const code = (await must(sb, `curl -sk -o /dev/null -w '%{http_code}' ${server}${path}`)).trim();
          assert.equal(code, "401", `anonymous GET ${server}${path} answered ${code}`);
        }
      }
    });

    it("the istio-reader-service-account can read endpoints but cannot write anything nor read Secrets", async (t) => {
      for (const ctx of guideClusters) {
        const server = await serverOf(ctx);
        const token = await readerToken(ctx);
        const call = async (method: string, path: string, body?: string) =>
          (
            await must(
              sb,
              `curl -sk -o /dev/null -w '%{http_code}' -X ${method} -H "Authorization: Bearer $READER" -H 'content-type: application/json' ${body ? `-d '${body}'` : ""} ${server}${path}`.replace(
                "$READER",
                token,
              ),
            )
          ).trim();
        // A positive control first: the token works for what the reader needs.
        assert.equal(await call("GET", "/apis/discovery.k8s.io/v1/endpointslices"), "200");
        assert.equal(await call("GET", "/api/v1/pods"), "200");
        const refused: [string, string, string?][] = [
          ["GET", "/api/v1/namespaces/istio-system/secrets"],
          ["GET", "/api/v1/namespaces/istio-system/secrets/cacerts"],
          [
            "POST",
            "/api/v1/namespaces/default/configmaps",
            '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"r"}}',
          ],
          ["DELETE", "/api/v1/namespaces/sample"],
          ["POST", "/api/v1/namespaces/sample/pods", '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r"}}'],
          ["PATCH", "/api/v1/namespaces/sample/services/helloworld", "{}"],
        ];
        for (const [method, path, body] of refused)
          assert.equal(await call(method, path, body), "403", `${method} ${path} by the reader in ${ctx}`);
      }
      // What install rendered: reads only, plus the reviews and ServiceExports Istio's reader role also has.
      const role = JSON.parse(
        await must(sb, "kubectl --context=cluster1 get clusterrole istio-reader-clusterrole-istio-system -o json"),
      ) as { rules: { apiGroups?: string[]; resources?: string[]; verbs: string[] }[] };
      const writes = role.rules.filter((r) => r.verbs.some((v) => !["get", "list", "watch"].includes(v)));
      t.diagnostic(`write rules: ${JSON.stringify(writes)}`);
      for (const r of writes)
        assert.ok(
          (r.resources ?? []).every((res) => ["tokenreviews", "subjectaccessreviews", "serviceexports"].includes(res)),
          `the reader role may write ${JSON.stringify(r)}`,
        );
      assert.ok(
        !role.rules.some(
          (r) =>
            (r.resources ?? []).some((res) => res === "secrets" || res === "*") && (r.apiGroups ?? []).includes(""),
        ),
      );
    });

    it("the proxy's admin port answers only on loopback", async (t) => {
      const s = side("cluster1");
      const fromHost = await httpGet(`http://${s.pod.ip}:15000/config_dump`, 5000);
      t.diagnostic(
        `GET http://${s.pod.ip}:15000/config_dump from the host: ${fromHost.status} ${fromHost.body.slice(0, 80)}`,
      );
      assert.equal(fromHost.status, 0, `admin answered on the pod IP: ${fromHost.status}`);
      const inside = await must(
        sb,
        `ip netns exec ${s.netns} curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15000/clusters`,
      );
      assert.equal(inside.trim(), "200");
      assert.equal((await httpGet(`http://${s.pod.ip}:15021/healthz/ready`)).status, 200);
    });

    it("inbound: plaintext is accepted (PERMISSIVE); TLS without a client certificate or with one from another root is refused; a mesh certificate is accepted", {
      timeout: 120_000,
    }, async (t) => {
      const target = await onePod(sb, "cluster1", "sample", "app=helloworld");
      const plain = await httpGet(`http://${target.ip}:5000/hello`);
      assert.match(plain.body, /Hello version: v1/, "PERMISSIVE accepts plaintext");
      const before = await httpGet(`http://${target.ip}:15090/stats/prometheus`);
      const rejected = (text: string) =>
        Number(/isthmus_inbound_rejected_total\{reason="tls_handshake"\}\s+(\d+)/.exec(text)?.[1] ?? "0");
      const noCert = await tlsProbe({ host: target.ip, port: 5000, path: "/hello" });
      t.diagnostic(`no client certificate: ${noCert.error ?? noCert.response.slice(0, 80)}`);
      assert.doesNotMatch(noCert.response, /Hello version/);
      const foreign = await foreignCertificate("spiffe://cluster.local/ns/sample/sa/sleep");
      const other = await tlsProbe({ host: target.ip, port: 5000, path: "/hello", ...foreign });
      t.diagnostic(`certificate from another root: ${other.error ?? other.response.slice(0, 80)}`);
      assert.doesNotMatch(other.response, /Hello version/);
      const after = await httpGet(`http://${target.ip}:15090/stats/prometheus`);
      assert.ok(rejected(after.body) >= rejected(before.body) + 2, "both refusals are counted by the sidecar");
      // The positive control: a certificate the mesh CA issued to sleep is accepted.
      const csrKey = await meshCertificate("cluster1", "sleep");
      const mesh = await tlsProbe({ host: target.ip, port: 5000, path: "/hello", ...csrKey });
      assert.match(
        mesh.response,
        /Hello version: v1/,
        `a mesh certificate must be accepted: ${mesh.error ?? mesh.response}`,
      );
    });

    const meshCertificate = async (ctx: string, sa: string): Promise<{ certPem: string; keyPem: string }> => {
      const { keyPem, csr } = await csrWithKey(`spiffe://cluster.local/ns/sample/sa/${sa}`);
      const r = await createCertificate({
        ...(await caOf(ctx)),
        token: await tokenOf(ctx, sa, "sample"),
        clusterId: ctx,
        csr,
      });
      if (!r.chain) throw new Error(`the CA refused ${sa}: ${r.error}`);
      return { certPem: r.chain.slice(0, -1).join("") || r.chain.join(""), keyPem };
    };

    it("a token for one service account cannot get a certificate for another", { timeout: 60_000 }, async (t) => {
      const ca = await caOf("cluster1");
      const token = await tokenOf("cluster1", "sleep", "sample");
      for (const wanted of [
        "spiffe://cluster.local/ns/sample/sa/default",
        "spiffe://cluster.local/ns/istio-system/sa/istiod",
      ]) {
        const r = await createCertificate({ ...ca, token, clusterId: "cluster1", csr: await csrFor(wanted) });
        t.diagnostic(
          `sleep's token asking for ${wanted}: ${r.error ?? `issued ${uriSans(r.chain?.[0] ?? "").join(",")}`}`,
        );
        if (r.chain) assert.deepEqual(uriSans(r.chain[0] ?? ""), ["spiffe://cluster.local/ns/sample/sa/sleep"]);
        else assert.match(r.error ?? "", /sleep|identity|not allowed|PERMISSION|UNAUTH/i);
      }
    });

    it("a proxy claiming an unknown cluster ID is refused with the reason named, and istiod logs it", {
      timeout: 60_000,
    }, async (t) => {
      const t0 = Date.now();
      const ca = await caOf("cluster1");
      const token = await tokenOf("cluster1", "sleep", "sample");
      const r = await createCertificate({
        ...ca,
        token,
        clusterId: "cluster9",
        csr: await csrFor("spiffe://cluster.local/ns/sample/sa/sleep"),
      });
      t.diagnostic(r.error ?? "issued");
      assert.match(
        r.error ?? "",
        /client claims to be in cluster "cluster9", but we only know about local cluster "cluster1" and remote clusters \[cluster2\]/,
      );
      // A token of cluster1 presented as cluster2's: the TokenReview in cluster2 refuses it.
      const wrong = await createCertificate({
        ...ca,
        token,
        clusterId: "cluster2",
        csr: await csrFor("spiffe://cluster.local/ns/sample/sa/sleep"),
      });
      t.diagnostic(wrong.error ?? "issued");
      assert.ok(wrong.error !== undefined, "a cluster1 token must not authenticate as cluster2");
      const istiod = await onePod(sb, "cluster1", "istio-system", "app=istiod");
      const logs = await waitFor(
        "istiod to log the refusal",
        async () => {
          const l = await must(
            sb,
            `kubectl --context=cluster1 -n istio-system logs ${istiod.name} --since=${Math.ceil((Date.now() - t0) / 1000) + 5}s`,
          );
          return /cluster9/.test(l) ? l : undefined;
        },
        30_000,
      );
      t.diagnostic(logs.split("\n").find((l) => /cluster9/.test(l)) ?? "");
    });

    it("a real sidecar started with ISTIO_META_CLUSTER_ID=cluster9: its log and istiod's name the refused cluster ID; it never turns ready nor connects", {
      timeout: 240_000,
    }, async (t) => {
      const { name: pod, createdAt } = await wrongClusterPod;
      t.after(() => sb.sh(`kubectl --context=cluster1 -n sample delete pod ${pod} --wait=false --ignore-not-found`));
      const ip = await waitFor(
        `${pod} to have an address`,
        async () => (await pods(sb, "cluster1", "sample", `app=${pod}`)).find((p) => p.ip !== "")?.ip,
        120_000,
      );
      const proxyLine = await waitFor(
        `${pod}'s sidecar to log why it has no certificate`,
        async () =>
          (await sb.sh(`kubectl --context=cluster1 -n sample logs ${pod} -c istio-proxy`)).stdout
            .split("\n")
            .find((l) => /certificate/.test(l) && /cluster9/.test(l)),
        120_000,
      );
      t.diagnostic(`sidecar: ${proxyLine}`);
      assert.match(proxyLine, /client claims to be in cluster \\?"cluster9\\?"/);
      // The sidecar reaches istiod through its ClusterIP, so istiod sees the node's address as the
      // peer; what tells this pod's requests apart is that it retries: the CA probe above makes one.
      const istiod = await onePod(sb, "cluster1", "istio-system", "app=istiod");
      const refusals = await waitFor(
        "istiod to log the refusals of this pod's repeated requests",
        async () => {
          const lines = (
            await must(
              sb,
              `kubectl --context=cluster1 -n istio-system logs ${istiod.name} --since=${Math.ceil((Date.now() - createdAt) / 1000) + 5}s`,
            )
          )
            .split("\n")
            .filter((l) => /refused a certificate request/.test(l) && /cluster=cluster9/.test(l))
            .filter((l) => Date.parse(l.split(" ")[0] ?? "") >= createdAt);
          return lines.length >= 2 ? lines : undefined;
        },
        90_000,
      );
      t.diagnostic(`istiod (${refusals.length} refusals since the pod was created): ${refusals.at(-1)}`);
      assert.match(refusals.at(-1) ?? "", /client claims to be in cluster/);
      const ready = await httpGet(`http://${ip}:15021/healthz/ready`);
      t.diagnostic(`/healthz/ready: ${ready.status} ${ready.body.trim()}`);
      assert.equal(ready.status, 503, "a sidecar without a certificate is not ready");
      const status = await must(sb, "isthmus proxy-status --context cluster1");
      t.diagnostic(status.trim());
      assert.doesNotMatch(
        status,
        new RegExp(`^${pod}\\.`, "m"),
        "it never connected to istiod (no certificate, no xDS)",
      );
      assert.match(ready.body, /the CA said: .*cluster9/, "its /healthz/ready names the refusal, not only 'waiting'");
    });
  });

  // ---------------------------------------------------------------- cluster2's API server stopped
  // The outage lasts 60 s, as the issue says; the bad-input cases (cluster1 only) run inside it,
  // so that the window costs no extra time and the junk is also fed to a mesh with a remote down.
  const outageMs = 60_000;
  const outage = {
    t0: 0,
    stoppedAt: 0,
    restarted: false,
    polling: false,
    poll: Promise.resolve(),
    notReady: [] as string[],
    seen: [] as string[],
  };
  after(async () => {
    outage.polling = false;
    await outage.poll;
    if (outage.stoppedAt > 0 && !outage.restarted)
      await controlSocket(sb, "cluster2", "POST", "/apiserver/start").catch(() => undefined);
  });

  it("cluster2's API server stopped: cluster1's clusterz names it unreachable within seconds", {
    timeout: 180_000,
  }, async (t) => {
    outage.t0 = Date.now();
    outage.polling = true;
    // cluster1's control plane must stay Ready the whole time (Istio issue 32102).
    outage.poll = (async () => {
      while (outage.polling) {
        const r = await istiodDebug(sb, "cluster1", "/ready").catch((e: unknown) => ({ status: 0, body: String(e) }));
        if (r.status !== 200) outage.notReady.push(`${new Date().toISOString()} ${r.status} ${r.body.trim()}`);
        const row = (await clusterz(sb, "cluster1"))?.find((e) => e.id === "cluster2") as
          | (ClusterzEntry & { error?: string })
          | undefined;
        const st = row === undefined ? "absent" : `${row.syncStatus}${row.error ? ` (error: ${row.error})` : ""}`;
        if (outage.seen.at(-1) !== st) outage.seen.push(st);
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    assert.deepEqual(await controlSocket(sb, "cluster2", "POST", "/apiserver/stop"), { apiServer: "stopped" });
    outage.stoppedAt = Date.now();
    // Istio keeps saying "synced" once the first sync is done; the row's error says the API server is unreachable.
    const down = await waitFor(
      "cluster1's clusterz to show that cluster2's API server cannot be reached",
      async () =>
        (await clusterz(sb, "cluster1"))?.find(
          (e) => e.id === "cluster2" && (e.syncStatus !== "synced" || (e as { error?: string }).error),
        ),
      90_000,
    );
    t.diagnostic(
      `cluster1 sees cluster2 as ${JSON.stringify(down)} after ${((Date.now() - outage.stoppedAt) / 1000).toFixed(1)} s`,
    );
  });

  // ---------------------------------------------------------------- bad input
  describe("bad input, fed while cluster2's API server is down", { concurrency: true }, () => {
    const istiodReady = async (ctx: string) =>
      assert.equal((await istiodDebug(sb, ctx, "/ready")).status, 200, `${ctx}'s istiod must stay Ready`);

    it("API server bodies: malformed JSON, wrong types, a huge body: a clear 4xx, nothing written, the server keeps answering", {
      timeout: 120_000,
    }, async (t) => {
      const raw = async (name: string, body: string | Buffer) => {
        const file = join(dir, `body-${name}`);
        writeFileSync(file, body);
        return sb.sh(`kubectl --context=cluster1 create --raw /api/v1/namespaces/default/configmaps -f ${file}`);
      };
      const cases: [string, string | Buffer][] = [
        ["malformed", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-1"'],
        ["wrong-kind", '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bad-3"}}'],
        ["not-json", Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x02])],
        [
          "huge",
          `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-5"},"data":{"a":"${"x".repeat(4 * 1024 * 1024)}"}}`,
        ],
      ];
      for (const [name, body] of cases) {
        const r = await raw(name, body);
        t.diagnostic(`${name}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
        assert.notEqual(r.code, 0, `${name} must be refused`);
        assert.match(r.stderr, /Error from server|error/i);
      }
      const left = await must(sb, "kubectl --context=cluster1 -n default get configmap -o name");
      assert.doesNotMatch(left, /bad-\d/, `nothing half-written: ${left}`);
      await must(sb, "kubectl --context=cluster1 -n default create configmap good-after-junk --from-literal=a=b");
      await must(sb, "kubectl --context=cluster1 -n default delete configmap good-after-junk");
    });

    it('API server bodies: a field of the wrong type (ConfigMap data {"a": 1}) is refused with 400', {
      timeout: 60_000,
    }, async (t) => {
      const file = join(dir, "body-wrong-types");
      writeFileSync(file, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-types"},"data":{"a":1}}');
      const r = await sb.sh(`kubectl --context=cluster1 create --raw /api/v1/namespaces/default/configmaps -f ${file}`);
      await sb.sh("kubectl --context=cluster1 -n default delete configmap bad-types --ignore-not-found");
      t.diagnostic(r.stderr.trim());
      assert.notEqual(r.code, 0, `a number where a string belongs was stored: ${r.stdout.slice(0, 200)}`);
      // kube-apiserver's words: a decoding error, 400, never stored.
      assert.match(
        r.stderr,
        /\(BadRequest\).*cannot unmarshal number into Go struct field ConfigMap\.data of type string/,
      );
    });

    it("admission review junk to istiod's webhook: an error answer, istiod stays up", {
      timeout: 60_000,
    }, async (t) => {
      const istiod = await onePod(sb, "cluster1", "istio-system", "app=istiod");
      for (const body of [
        "junk",
        "{}",
        '{"kind":"AdmissionReview","request":{"object":12}}',
        `{"request":${"[".repeat(5000)}}`,
      ]) {
        const file = join(dir, "review.json");
        writeFileSync(file, body);
        const r = await sb.sh(
          `curl -sk --max-time 10 -w ' %{http_code}' -X POST -H 'content-type: application/json' --data-binary @${file} https://${istiod.ip}:15017/inject`,
        );
        t.diagnostic(`${body.slice(0, 40)} → ${r.stdout.slice(0, 160)}`);
        assert.equal(r.code, 0, `the webhook must answer: ${r.stderr}`);
        assert.doesNotMatch(r.stdout, /"allowed":\s*true[^}]*"patch"/, "junk is never patched");
      }
      await istiodReady("cluster1");
    });

    it("garbage bytes to xDS 15010 and 15012: the connection is closed, istiod stays up and proxies stay connected", {
      timeout: 60_000,
    }, async (t) => {
      const istiod = await onePod(sb, "cluster1", "istio-system", "app=istiod");
      for (const port of [15010, 15012]) {
        for (let i = 0; i < 3; i++) {
          const bytes = Buffer.alloc(8192 * (i + 1));
          for (let j = 0; j < bytes.length; j++) bytes[j] = (j * 2654435761 + i * 97) & 0xff;
          const r = await rawExchange(istiod.ip, port, bytes);
          t.diagnostic(`${port} #${i}: ${r.answer.length} bytes back${r.error ? `, ${r.error}` : ""}`);
        }
      }
      await istiodReady("cluster1");
      const sync = await istiodDebug(sb, "cluster1", "/debug/syncz");
      assert.match(sync.body, /sleep/, "sleep's proxy is still connected");
    });

    it("a CSR that is not a CSR: the CA refuses with a reason, and still issues for a good one", {
      timeout: 60_000,
    }, async (t) => {
      const istiod = await onePod(sb, "cluster1", "istio-system", "app=istiod");
      const ca = {
        caAddress: `${istiod.ip}:15012`,
        caRootPem: readFileSync(join(dir, "work", "certs", "root-cert.pem"), "utf8"),
        serverName: "istiod.istio-system.svc",
      };
      const token = (
        await must(sb, "kubectl --context=cluster1 -n sample create token sleep --audience istio-ca")
      ).trim();
      for (const csr of [
        "",
        "not a csr",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
      ]) {
        const r = await createCertificate({ ...ca, token, clusterId: "cluster1", csr });
        t.diagnostic(`${JSON.stringify(csr.slice(0, 20))}: ${r.error ?? "issued"}`);
        assert.ok(r.error !== undefined && /csr|certificate request/i.test(r.error), r.error ?? "issued for junk");
      }
      const good = await createCertificate({
        ...ca,
        token,
        clusterId: "cluster1",
        csr: await csrFor("spiffe://cluster.local/ns/sample/sa/sleep"),
      });
      assert.ok(good.chain && good.chain.length > 0, good.error);
    });

    it("HTTP to a sidecar's inbound: oversized headers, a malformed request, a slow client: an error answer, the next request is served", {
      timeout: 60_000,
    }, async (t) => {
      const target = await onePod(sb, "cluster1", "sample", "app=helloworld");
      const huge = Buffer.from(`GET /hello HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(100_000)}\r\n\r\n`);
      const big = await rawExchange(target.ip, 5000, huge);
      t.diagnostic(`100 kB header: ${big.answer.toString().split("\r\n")[0] || big.error || "closed"}`);
      assert.doesNotMatch(big.answer.toString(), /^HTTP\/1\.1 200/, "an oversized header is not served");
      const bad = await rawExchange(target.ip, 5000, Buffer.from("NOT HTTP AT ALL\r\n\r\n"));
      t.diagnostic(`malformed: ${bad.answer.toString().split("\r\n")[0] || bad.error || "closed"}`);
      assert.doesNotMatch(bad.answer.toString(), /^HTTP\/1\.1 200/);
      // A client that sends half a request and stalls must not block others.
      const net = await import("node:net");
      const slow = net.connect({ host: target.ip, port: 5000 }, () => slow.write("GET /hello HTTP/1.1\r\nhost: x\r\n"));
      slow.on("error", () => {});
      t.after(() => slow.destroy());
      const ok = await httpGet(`http://${target.ip}:5000/hello`);
      assert.match(ok.body, /Hello version: v1/, `served next to a stalled client: ${ok.status} ${ok.body}`);
    });

    it("IstioOperator junk via isthmus install -f: a clear error naming the file, nothing applied", {
      timeout: 180_000,
    }, async (t) => {
      const rvBefore = await must(
        sb,
        "kubectl --context=cluster1 -n istio-system get deploy istiod -o jsonpath='{.metadata.resourceVersion}'",
      );
      const files: [string, string][] = [
        ["junk-syntax.yaml", "spec: [values: {{\n"],
        ["junk-kind.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"],
        [
          "junk-types.yaml",
          "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    global:\n      multiCluster: 7\n",
        ],
      ];
      for (const [name, text] of files) {
        writeFileSync(join(dir, name), text);
        const r = await sb.sh(`isthmus install --context=cluster1 -f ${join(dir, name)} -y`, { timeoutMs: 120_000 });
        t.diagnostic(`${name}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(0, 2).join(" | ")}`);
        assert.notEqual(r.code, 0, `${name} must be refused`);
        // The error names the file or the offending field and value, and says nothing was changed.
        assert.match(r.stderr, new RegExp(`${name.replace(".", "\\.")}|got the|expected`), r.stderr);
        assert.match(r.stderr, /nothing was changed/, r.stderr);
      }
      const rvAfter = await must(
        sb,
        "kubectl --context=cluster1 -n istio-system get deploy istiod -o jsonpath='{.metadata.resourceVersion}'",
      );
      assert.equal(rvAfter, rvBefore, "nothing applied");
      await istiodReady("cluster1");
    });
  });

  it("cluster2's API server started again after 60 s down: traffic kept flowing, cluster1 stayed Ready, clusterz synced again, endpoints exact", {
    timeout: 300_000,
  }, async (t) => {
    assert.ok(outage.stoppedAt > 0, "runs after the API server was stopped");
    try {
      // The outage's length is the fault itself (the issue's 60 s), not a wait for something.
      const left = outageMs - (Date.now() - outage.stoppedAt);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      t.diagnostic(`cluster2's API server was down for ${((Date.now() - outage.stoppedAt) / 1000).toFixed(1)} s`);
      assert.deepEqual(await controlSocket(sb, "cluster2", "POST", "/apiserver/start"), { apiServer: "running" });
      outage.restarted = true;
      await waitFor(
        "cluster1's clusterz to show cluster2 synced again",
        async () =>
          (await clusterz(sb, "cluster1"))?.find(
            (e) => e.id === "cluster2" && e.syncStatus === "synced" && !(e as { error?: string }).error,
          ),
        120_000,
      );
    } finally {
      outage.polling = false;
      await outage.poll;
    }
    const t1 = Date.now();
    const seen = outage.seen;
    t.diagnostic(`cluster2 as seen by cluster1's clusterz: ${seen.join(" → ")}`);
    assert.deepEqual(outage.notReady, [], "cluster1's istiod must stay Ready while cluster2's API server is down");
    assert.ok(
      seen.some((s) => /error: .*(cannot reach|ECONNREFUSED)/.test(s)),
      seen.join(" → "),
    );
    assert.equal(seen.at(-1), "synced", seen.join(" → "));
    for (const [ctx, s] of window(outage.t0, t1)) {
      t.diagnostic(`from ${ctx}: ${s.text}`);
      const got = side(ctx).traffic.between(outage.t0, t1);
      // Name lookups included: the cluster DNS once lost a lookup whenever the bridge's MAC changed (fixed).
      const failed = got.filter((x) => x.error !== undefined);
      assert.deepEqual(failed, [], `requests from ${ctx} failed while cluster2's API server was down: ${s.text}`);
      assert.ok(got.some((x) => x.version === "v1") && got.some((x) => x.version === "v2"), s.text);
    }
    // No endpoint lost, none stale (Istio issues 38440, 45992).
    const eps = await endpointsConverge(60_000);
    t.diagnostic(`endpoints afterwards: ${eps.join(", ")}`);
  });

  // ---------------------------------------------------------------- cluster1's istiod killed
  it("cluster1's istiod killed: no request fails, proxies reconnect and converge, a change made meanwhile is picked up", {
    timeout: 300_000,
  }, async (t) => {
    const t0 = Date.now();
    const old = await onePod(sb, "cluster1", "istio-system", "app=istiod");
    await must(sb, `kubectl --context=cluster1 -n istio-system delete pod ${old.name} --wait=true`);
    const killedAt = Date.now();
    // The change: a second helloworld-v2 in cluster2, which only cluster1's istiod can tell cluster1's proxies about.
    await must(sb, "kubectl --context=cluster2 -n sample scale deploy helloworld-v2 --replicas=2");
    t.after(() => must(sb, "kubectl --context=cluster2 -n sample scale deploy helloworld-v2 --replicas=1"));
    const istiodNow = await pods(sb, "cluster1", "istio-system", "app=istiod");
    t.diagnostic(
      `when helloworld-v2 was scaled, cluster1's istiod pods: ${istiodNow.map((p) => `${p.name} ${p.phase}`).join(", ") || "none"}`,
    );
    await must(
      sb,
      "kubectl --context=cluster1 -n istio-system wait --for=condition=Ready pod -l app=istiod --timeout=180s",
      200_000,
    );
    const fresh = await onePod(sb, "cluster1", "istio-system", "app=istiod");
    assert.notEqual(fresh.name, old.name);
    t.diagnostic(`new istiod ${fresh.name} Ready ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    await must(
      sb,
      "kubectl --context=cluster2 -n sample wait --for=condition=Ready pod -l app=helloworld --timeout=180s",
      200_000,
    );
    const eps = await endpointsConverge(120_000);
    assert.equal(eps.length, 3, `v1 and both v2 pods expected in both sleep proxies: ${eps.join(", ")}`);
    // Every proxy of cluster1 reconnected to the new istiod and is SYNCED.
    const status = await waitFor(
      "proxy-status in cluster1 to show every proxy SYNCED",
      async () => {
        const out = await must(sb, "isthmus proxy-status --context cluster1");
        const rows = out.trim().split("\n").slice(1);
        const sample = rows.filter((r) => r.includes(".sample"));
        return sample.length >= 2 && rows.every((r) => !/STALE|NACKED|NOT SENT/.test(r)) && out.includes(fresh.name)
          ? out
          : undefined;
      },
      120_000,
    );
    t.diagnostic(status.trim());
    const t1 = Date.now();
    for (const [ctx, s] of window(t0, t1)) {
      t.diagnostic(`from ${ctx}: ${s.text}`);
      // Name lookups included: they go to the cluster daemon's DNS behind the bridge's gateway, and
      // used to time out when the replaced istiod pod's veth had carried the bridge's MAC (fixed: pinned).
      const failed = side(ctx)
        .traffic.between(t0, t1)
        .filter((x) => x.error !== undefined);
      assert.deepEqual(failed, [], `requests from ${ctx} failed while cluster1's istiod was down: ${s.text}`);
    }
    await must(sb, "kubectl --context=cluster2 -n sample scale deploy helloworld-v2 --replicas=1");
    await endpointsConverge(120_000);
  });

  // ---------------------------------------------------------------- a helloworld pod killed
  it("a helloworld pod killed: failures bounded, its endpoint leaves every proxy in both clusters", {
    timeout: 300_000,
  }, async (t) => {
    const victim = await onePod(sb, "cluster1", "sample", "app=helloworld");
    const t0 = Date.now();
    await must(sb, `kubectl --context=cluster1 -n sample delete pod ${victim.name} --wait=false`);
    const proxies = [
      ...[...sides.values()].map((s) => ({ name: `${s.pod.name} (${s.ctx})`, netns: s.netns })),
      await (async () => {
        const v2 = await onePod(sb, "cluster2", "sample", "app=helloworld");
        return { name: `${v2.name} (cluster2)`, netns: await podNetns(sb, v2.ip) };
      })(),
    ];
    for (const p of proxies) {
      await waitFor(
        `${victim.ip}:5000 to leave the proxy of ${p.name}`,
        async () => ((await proxyHosts(sb, p.netns)).some((h) => h.address === `${victim.ip}:5000`) ? undefined : true),
        60_000,
      );
    }
    t.diagnostic(`gone from ${proxies.length} proxies ${((Date.now() - t0) / 1000).toFixed(1)} s after the delete`);
    // Not `kubectl wait -l`: the terminating pod is in its list and vanishes under it (NotFound).
    await waitFor(
      "the replacement helloworld-v1 pod to run",
      async () =>
        (await pods(sb, "cluster1", "sample", "app=helloworld")).find(
          (p) => p.name !== victim.name && p.phase === "Running" && !p.deleting,
        ),
      180_000,
    );
    await endpointsConverge(120_000);
    const t1 = Date.now();
    for (const [ctx, s] of window(t0, t1)) {
      t.diagnostic(`from ${ctx}: ${s.text}`);
      // Graceful deletion takes the endpoint out before the process stops; a request already on its way may fail.
      assert.ok(
        s.failed <= 3,
        `at most 3 failed requests from ${ctx} expected when one helloworld pod goes: ${s.text}`,
      );
    }
  });

  // ---------------------------------------------------------------- the link between the clusters' pods cut
  let linkRestoredAt = 0;
  it("the link between the clusters' pods cut: the local version keeps answering, the other never does, and the sidecar answers no request with an error", {
    timeout: 360_000,
  }, async (t) => {
    const local = { cluster1: "v1", cluster2: "v2" } as const;
    const cidrs = { cluster1: await podCidr(sb, "cluster1"), cluster2: await podCidr(sb, "cluster2") };
    const retriesBefore = new Map<string, number>();
    for (const ctx of guideClusters)
      retriesBefore.set(ctx, await helloworldCounter(side(ctx).pod.ip, "envoy_cluster_upstream_rq_retry"));
    const other = (ctx: (typeof guideClusters)[number]) => (ctx === "cluster1" ? "cluster2" : "cluster1");
    const cut = await cutPodLink(
      sb,
      await Promise.all(
        guideClusters.map(async (ctx) => ({
          netns: await clusterNetns(sb, side(ctx).netns),
          dropFrom: cidrs[other(ctx)],
        })),
      ),
    );
    t.after(() => cut.restore());
    const t0 = Date.now();
    t.diagnostic(
      `cut: every pod of cluster1 drops packets from ${cidrs.cluster2}, every pod of cluster2 from ${cidrs.cluster1}`,
    );
    // What a user sees, with a patient client (40 s): answers keep coming, from the local version
    // only. A request the sidecar sends to the other cluster on a new connection waits for the
    // connect timeout (10 s) and is retried locally; one that rides a connection opened before the
    // cut hangs (no route timeout by default, as in Istio) until the client gives up. Never an
    // answer from the other side, never an error answer from the sidecar: only the client's deadline.
    const probe = async (ctx: (typeof guideClusters)[number]) => {
      const got: { version?: string; error?: string; seconds: number }[] = [];
      for (let round = 0; round < 2; round++)
        got.push(...(await Promise.all([0, 1, 2].map(() => timedRequest(sb, side(ctx).netns, 40)))));
      const retried =
        (await helloworldCounter(side(ctx).pod.ip, "envoy_cluster_upstream_rq_retry")) - (retriesBefore.get(ctx) ?? 0);
      return { got, retried };
    };
    const probes = await Promise.all(guideClusters.map(async (ctx) => [ctx, await probe(ctx)] as const));
    // The patient probes can finish at once (least request keeps them local while a request hangs
    // on the other side); keep the cut until the steady traffic, one request at a time with a 5 s
    // deadline, has a few answers of its own in the window on both sides.
    await waitFor(
      "steady traffic from both sleep pods during the cut",
      async () => (guideClusters.every((ctx) => side(ctx).traffic.between(t0).length >= 3) ? true : undefined),
      60_000,
    );
    const t1 = Date.now();
    const onlyDeadlines = (errors: (string | undefined)[]) => errors.every((e) => e === undefined || /^28: /.test(e));
    for (const [ctx, { got, retried }] of probes) {
      const slowest = Math.max(...got.map((g) => g.seconds));
      t.diagnostic(
        `from ${ctx} during the cut, patient client (40 s): ${summarize(got.map((g) => ({ at: 0, ...g }))).text}; slowest ${slowest.toFixed(1)} s; the sidecar retried ${retried}`,
      );
      // The outlier mark, when the sidecar tried the other cluster on a new connection: /clusters names why it failed.
      const remote = (await proxyHosts(sb, side(ctx).netns)).find((h) => h.clusterId === other(ctx));
      t.diagnostic(`${ctx}'s sleep proxy on the other cluster's endpoint: ${JSON.stringify(remote)}`);
      const steady = side(ctx).traffic.between(t0, t1);
      t.diagnostic(`steady traffic (5 s deadline) from ${ctx} during the cut: ${summarize(steady).text}`);
      for (const [what, samples] of [
        ["patient", got],
        ["steady", steady],
      ] as const) {
        assert.ok(
          samples.every((g) => g.version === undefined || g.version === local[ctx]),
          `no answer from the other cluster reaches ${ctx} (${what})`,
        );
        assert.ok(
          samples.some((g) => g.version === local[ctx]),
          `the local version keeps answering in ${ctx} (${what})`,
        );
        assert.ok(
          onlyDeadlines(samples.map((g) => g.error)),
          `only the client's deadline, no error answer, in ${ctx} (${what})`,
        );
      }
    }
    await cut.restore();
    linkRestoredAt = Date.now();
  });

  it("the link between the clusters' pods restored: both versions answer again from both clusters", {
    timeout: 120_000,
  }, async (t) => {
    assert.ok(linkRestoredAt > 0, "runs after the cut");
    for (const ctx of guideClusters) {
      const hosts = (await proxyHosts(sb, side(ctx).netns)).map(
        (h) => `${h.address} ${h.clusterId} active=${h.activeRequests}`,
      );
      t.diagnostic(`${ctx}'s sleep proxy after the link came back: ${hosts.join("; ")}`);
    }
    await waitFor(
      "both versions to answer from both clusters after the link came back",
      async () =>
        guideClusters.every((ctx) => {
          const got = side(ctx).traffic.between(linkRestoredAt);
          return got.some((x) => x.version === "v1") && got.some((x) => x.version === "v2");
        })
          ? true
          : undefined,
      60_000,
    );
    t.diagnostic(
      `both versions answer again from both clusters ${((Date.now() - linkRestoredAt) / 1000).toFixed(1)} s after the link came back`,
    );
    for (const [ctx, s] of window(linkRestoredAt)) t.diagnostic(`from ${ctx} after the link came back: ${s.text}`);
  });

  // ---------------------------------------------------------------- remote secrets
  describe("cluster1's remote secret for cluster2", () => {
    const secretName = "istio-remote-secret-cluster2";
    let good = "";
    const istiodLogs = async (since: number): Promise<string> => {
      const pod = await onePod(sb, "cluster1", "istio-system", "app=istiod");
      const secs = Math.ceil((Date.now() - since) / 1000) + 5;
      return must(sb, `kubectl --context=cluster1 -n istio-system logs ${pod.name} --since=${secs}s`);
    };
    const onlyLocal = async () => {
      const v1 = (await pods(sb, "cluster1", "sample", "app=helloworld")).filter((p) => p.phase === "Running");
      const want = v1.map((p) => `${p.ip}:5000`).sort();
      return waitFor(
        "cluster1's sleep proxy to hold only cluster1's helloworld",
        async () => {
          const got = (await proxyHosts(sb, side("cluster1").netns)).map((h) => h.address).sort();
          return JSON.stringify(got) === JSON.stringify(want) ? got : undefined;
        },
        60_000,
      );
    };
    const localStillWorks = async (from: number) => {
      const s = summarize(side("cluster1").traffic.between(from));
      const recent = side("cluster1").traffic.between(Date.now() - 5000);
      await waitFor(
        "a fresh v1 answer from cluster1's sleep",
        async () =>
          recent.some((x) => x.version === "v1") ||
          side("cluster1")
            .traffic.between(Date.now() - 3000)
            .some((x) => x.version === "v1")
            ? true
            : undefined,
        30_000,
      );
      return s;
    };

    before(async () => {
      good = await must(sb, `kubectl --context=cluster1 -n istio-system get secret ${secretName} -o json`);
    });

    it("deleted: cluster2's endpoints leave cluster1's proxies within seconds and remote-clusters no longer lists it", {
      timeout: 180_000,
    }, async (t) => {
      const t0 = Date.now();
      await must(sb, `kubectl --context=cluster1 -n istio-system delete secret ${secretName}`);
      await onlyLocal();
      const took = (Date.now() - t0) / 1000;
      t.diagnostic(`cluster2's endpoints left cluster1's sleep proxy ${took.toFixed(1)} s after the delete`);
      assert.ok(took < 20, `took ${took} s; Istio removes the shard and pushes at once (issue 27187)`);
      const rc = await must(sb, "isthmus remote-clusters --context cluster1");
      assert.doesNotMatch(rc, /^cluster2\s/m, rc);
      assert.match(rc, /^cluster1\s/m, rc);
      assert.match(await istiodLogs(t0), /remote cluster removed.*cluster2/, "istiod logs the removal");
      const s = await localStillWorks(t0);
      t.diagnostic(`from cluster1: ${s.text}`);
    });

    const replaced = async (mutate: (secret: Record<string, unknown>) => void): Promise<void> => {
      const secret = JSON.parse(good) as Record<string, unknown>;
      const meta = secret.metadata as Record<string, unknown>;
      for (const k of ["resourceVersion", "uid", "creationTimestamp", "managedFields"]) delete meta[k];
      mutate(secret);
      const file = join(dir, `secret-${Date.now()}.json`);
      writeFileSync(file, JSON.stringify(secret));
      await must(sb, `kubectl --context=cluster1 apply -f ${file}`);
    };
    const kubeconfigOf = (secret: Record<string, unknown>): string =>
      Buffer.from(String((secret.data as Record<string, string>).cluster2), "base64").toString();

    it("with a bad token: clusterz shows cluster2 not synced with the API server's refusal, istiod logs it, local traffic unaffected", {
      timeout: 180_000,
    }, async (t) => {
      const t0 = Date.now();
      await replaced((s) => {
        const kc = kubeconfigOf(s).replace(/token: \S+/, "token: not-a-valid-token");
        (s.data as Record<string, string>).cluster2 = Buffer.from(kc).toString("base64");
      });
      const row = await waitFor(
        "clusterz to explain why cluster2 does not sync",
        async () =>
          (await clusterz(sb, "cluster1"))?.find(
            (e) => e.id === "cluster2" && (e as ClusterzEntry & { error?: string }).error,
          ),
        60_000,
      );
      t.diagnostic(JSON.stringify(row));
      assert.notEqual(row.syncStatus, "synced");
      assert.match(JSON.stringify(row), /401|Unauthorized|unauthori[sz]ed/i);
      const rc = await must(sb, "isthmus remote-clusters --context cluster1");
      t.diagnostic(rc.trim());
      assert.match(rc, /^cluster2\s.*istio-system\/istio-remote-secret-cluster2/m);
      await onlyLocal();
      const logs = await waitFor(
        "istiod to log the refusal",
        async () => {
          const l = await istiodLogs(t0);
          return /cluster2/.test(l) && /401|Unauthorized/i.test(l) ? l : undefined;
        },
        60_000,
      );
      assert.doesNotMatch(logs, /not-a-valid-token/, "the token itself is never logged");
      t.diagnostic(`from cluster1: ${(await localStillWorks(t0)).text}`);
    });

    it("that is not a kubeconfig: clusterz shows it failed with the reason, istiod logs it naming the secret", {
      timeout: 120_000,
    }, async (t) => {
      const t0 = Date.now();
      await replaced((s) => {
        (s.data as Record<string, string>).cluster2 = Buffer.from("this is not a kubeconfig {{{").toString("base64");
      });
      const row = await waitFor(
        "clusterz to show cluster2 failed",
        async () => (await clusterz(sb, "cluster1"))?.find((e) => e.id === "cluster2" && e.syncStatus === "failed"),
        60_000,
      );
      t.diagnostic(JSON.stringify(row));
      assert.equal(row.secretName, "istio-system/istio-remote-secret-cluster2");
      const logs = await waitFor(
        "istiod to log the unusable key",
        async () => {
          const l = await istiodLogs(t0);
          return /cannot be used/.test(l) && /istio-remote-secret-cluster2/.test(l) ? l : undefined;
        },
        60_000,
      );
      t.diagnostic(logs.split("\n").find((l) => /cannot be used/.test(l)) ?? "");
      await onlyLocal();
      t.diagnostic(`from cluster1: ${(await localStillWorks(t0)).text}`);
    });

    it("created in the wrong namespace: ignored (remote-clusters lists no cluster2), nothing else changes", {
      timeout: 120_000,
    }, async (t) => {
      await must(sb, `kubectl --context=cluster1 -n istio-system delete secret ${secretName}`);
      const t0 = Date.now();
      await replaced((s) => {
        (s.metadata as Record<string, unknown>).namespace = "default";
      });
      await onlyLocal();
      // Give istiod a chance to (wrongly) pick it up before looking.
      await waitFor("10 s of traffic", async () => (Date.now() - t0 > 10_000 ? true : undefined), 30_000);
      const cz = await clusterz(sb, "cluster1");
      assert.ok(cz !== undefined);
      assert.deepEqual(
        cz.map((e) => e.id),
        ["cluster1"],
        `a secret outside istio-system must not be read: ${JSON.stringify(cz)}`,
      );
      await onlyLocal();
      await must(sb, `kubectl --context=cluster1 -n default delete secret ${secretName}`);
      t.diagnostic(`from cluster1: ${(await localStillWorks(t0)).text}`);
    });

    it("naming the control plane's own cluster: ignored with a log line, cluster1 stays the local registry", {
      timeout: 120_000,
    }, async (t) => {
      const t0 = Date.now();
      const own = await must(sb, "isthmus x create-remote-secret --context=cluster1 --name=cluster1");
      const ownFile = join(dir, "own-secret.yaml");
      writeFileSync(ownFile, own);
      await must(sb, `kubectl --context=cluster1 apply -f ${ownFile}`);
      const line = await waitFor(
        "istiod to log that it ignores its own cluster ID",
        async () => (await istiodLogs(t0)).split("\n").find((l) => /own cluster ID/.test(l) && /cluster1/.test(l)),
        60_000,
      );
      t.diagnostic(line);
      const cz = await clusterz(sb, "cluster1");
      assert.deepEqual(
        cz?.map((e) => [e.id, e.secretName]),
        [["cluster1", ""]],
        `clusterz: ${JSON.stringify(cz)}`,
      );
      await onlyLocal();
      await must(sb, `kubectl --context=cluster1 delete -f ${ownFile}`);
      t.diagnostic(`from cluster1: ${(await localStillWorks(t0)).text}`);
    });

    it("restored: cluster2 synced again and its endpoints are back", { timeout: 180_000 }, async (t) => {
      const t0 = Date.now();
      await replaced(() => {});
      await waitFor(
        "cluster2 synced",
        async () => (await clusterz(sb, "cluster1"))?.find((e) => e.id === "cluster2" && e.syncStatus === "synced"),
        120_000,
      );
      const eps = await endpointsConverge(120_000);
      t.diagnostic(
        `endpoints: ${eps.join(", ")}; from cluster1: ${summarize(side("cluster1").traffic.between(t0)).text}`,
      );
    });
  });

  // ---------------------------------------------------------------- mismatched roots (changes the mesh for good)
  it("mismatched roots: cluster2 re-rooted; v2 no longer answers from cluster1, the sidecar retries on v1 and no request fails", {
    timeout: 420_000,
  }, async (t) => {
    const work = join(dir, "work");
    const foreign = `foreign-${Date.now()}`;
    await must(
      sb,
      `cd ${work} && isthmus x ca create-root --out-dir ${foreign} && isthmus x ca create-intermediate --cluster cluster2 --root-dir ${foreign} --out-dir ${foreign}/cluster2`,
      240_000,
    );
    const f = `${foreign}/cluster2`;
    await must(
      sb,
      `cd ${work} && kubectl create secret generic cacerts -n istio-system --context=cluster2 --from-file=${f}/ca-cert.pem --from-file=${f}/ca-key.pem --from-file=${f}/root-cert.pem --from-file=${f}/cert-chain.pem --dry-run=client -o yaml | kubectl apply --context=cluster2 -f -`,
    );
    // istiod reads cacerts when it starts; the new helloworld-v2 pod then gets a certificate of the other root.
    await must(sb, "kubectl --context=cluster2 -n istio-system delete pod -l app=istiod --wait=true");
    await must(
      sb,
      "kubectl --context=cluster2 -n istio-system wait --for=condition=Ready pod -l app=istiod --timeout=180s",
      200_000,
    );
    const oldV2 = await onePod(sb, "cluster2", "sample", "app=helloworld");
    await must(sb, `kubectl --context=cluster2 -n sample delete pod ${oldV2.name} --wait=true`);
    await must(
      sb,
      "kubectl --context=cluster2 -n sample wait --for=condition=Ready pod -l app=helloworld --timeout=180s",
      200_000,
    );
    const newV2 = await onePod(sb, "cluster2", "sample", "app=helloworld");
    rerootedV2 = newV2;
    rerootedAt = Date.now();
    const retries = async (ctx: string) =>
      Number(
        /envoy_cluster_upstream_rq_retry\{cluster_name="outbound\|5000\|\|helloworld\.sample\.svc\.cluster\.local"\}\s+(\d+)/.exec(
          (await httpGet(`http://${side(ctx).pod.ip}:15090/stats/prometheus`)).body,
        )?.[1] ?? "0",
      );
    const retriesBefore = await retries("cluster1");
    // What a user sees: v2 no longer answers from cluster1 (its certificate chains to another
    // root), and the sidecar retries those requests on v1, so none fails.
    // Counted from when cluster1's sleep proxy holds the re-rooted v2 and no longer the old one
    // (cluster2's own sleep proxy keeps the old root: it can no longer talk to its istiod).
    await waitFor(
      "cluster1's sleep proxy to hold the re-rooted helloworld-v2 only",
      async () => {
        const got = (await proxyHosts(sb, side("cluster1").netns)).map((h) => h.address);
        return got.includes(`${newV2.ip}:5000`) && !got.includes(`${oldV2.ip}:5000`) ? true : undefined;
      },
      120_000,
    );
    const settled = Date.now();
    await waitFor(
      "20 requests from cluster1 after the re-rooted v2 reached its proxy, and a retried handshake",
      async () =>
        side("cluster1").traffic.between(settled).length >= 20 && (await retries("cluster1")) > retriesBefore
          ? true
          : undefined,
      120_000,
    );
    const got = side("cluster1").traffic.between(settled);
    const s = summarize(got);
    t.diagnostic(`from cluster1 after cluster2 was re-rooted: ${s.text}`);
    const retried = (await retries("cluster1")) - retriesBefore;
    t.diagnostic(`cluster1's sleep sidecar retried ${retried} requests on helloworld`);
    assert.ok(got.length >= 10, s.text);
    assert.ok(!got.some((x) => x.version === "v2"), `v2 must not answer across roots: ${s.text}`);
    assert.equal(s.failed, 0, `the retry policy should hide the failed handshakes: ${s.text}`);
    assert.ok(retried > 0, "the handshakes that failed show up as retries");
    const stats = await httpGet(`http://${newV2.ip}:15090/stats/prometheus`);
    const refused = Number(
      /isthmus_inbound_rejected_total\{reason="tls_handshake"\}\s+(\d+)/.exec(stats.body)?.[1] ?? "0",
    );
    t.diagnostic(`the re-rooted helloworld-v2 refused ${refused} handshakes`);
  });

  it("mismatched roots: cluster1's sleep sidecar names the failed handshake (a log line and /clusters), not only a retry count", {
    timeout: 60_000,
  }, async (t) => {
    const v2 = rerootedV2;
    assert.ok(v2 !== undefined, "runs after the re-rooting case");
    const address = `${v2.ip}:5000`;
    const host = (await proxyHosts(sb, side("cluster1").netns)).find((h) => h.address === address);
    t.diagnostic(`/clusters: ${JSON.stringify(host)}`);
    assert.match(host?.lastFailure ?? "", /unknown root/, `/clusters names why ${address} failed`);
    const line = await waitFor(
      "cluster1's sleep sidecar to log the failed handshake",
      async () =>
        (
          await must(
            sb,
            `kubectl --context=cluster1 -n sample logs ${side("cluster1").pod.name} -c istio-proxy --since=${Math.ceil((Date.now() - rerootedAt) / 1000) + 60}s`,
          )
        )
          .split("\n")
          .find((l) => /upstream TLS handshake failed/.test(l) && l.includes(address)),
      30_000,
    );
    t.diagnostic(`sidecar: ${line}`);
    assert.match(line, /unknown root/);
  });

  // ---------------------------------------------------------------- the log audit, over everything above
  it("no token, key or certificate appears in any log (daemons, istiod, sidecars, apps)", {
    timeout: 120_000,
  }, async (t) => {
    const secrets: string[] = [];
    const kubeconfig = readFileSync(sb.env.KUBECONFIG ?? "", "utf8");
    for (const m of kubeconfig.matchAll(/token: (\S+)/g)) if (m[1]) secrets.push(m[1]);
    for (const ctx of guideClusters) {
      const tok = await readerToken(ctx);
      if (tok) secrets.push(tok);
    }
    assert.ok(secrets.length >= 4, "the admin and reader tokens to look for");
    const files = (await must(sb, 'find "$ISTHMUS_HOME" -name "*.log" -type f')).trim().split("\n").filter(Boolean);
    t.diagnostic(`${files.length} log files`);
    assert.ok(files.some((f) => f.endsWith("daemon.log")) && files.some((f) => f.endsWith("discovery.log")));
    const found: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      for (const needle of ["-----BEGIN ", "eyJhbGciOi", ...secrets])
        if (text.includes(needle)) found.push(`${file}: ${needle.slice(0, 12)}…`);
    }
    assert.deepEqual(found, []);
  });
});
