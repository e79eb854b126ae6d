// The guide itself, then issue 6's checks on the clusters it leaves. First every command of
// shared/seed/install-multi-primary.md, run verbatim with isthmus in place of istioctl,
// CTX_CLUSTER1/CTX_CLUSTER2 set, the guide's own manifests from shared/samples and the machine's
// kubectl; its check is the guide's (answers toggle between v1 and v2 from both sleep pods).
// Then, on the same two clusters (bringing the guide up again would cost minutes): the pods
// and their sidecars, what `isthmus proxy-config endpoint` shows, the inbound sidecars' record
// of verified peers from the other cluster, and last the destructive steps (cluster1's control
// plane stopped, a remote secret deleted).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { adaptCommand, guideCommands } from "./support/guide.js";
import { helloworldCluster, httpGet, onePod, podNetns, summarize, Traffic, waitFor } from "./support/guide-clusters.js";
import {
  type Answer,
  countVersions,
  describeCounts,
  endpointRows,
  firstPodName,
  helloworldAnswers,
  podRows,
  prometheusSeries,
  sumMatching,
  versionOf,
} from "./support/sample-checks.js";
import { pollUntil, type Sandbox, sandbox, sharedDir } from "./support/shell.js";

const root = process.getuid?.() === 0;
const clusters = ["cluster1", "cluster2"] as const;
type Ctx = (typeof clusters)[number];
/** Where each version of helloworld runs in the guide. */
const versionIn: Record<Ctx, string> = { cluster1: "v1", cluster2: "v2" };
const other = (ctx: Ctx): Ctx => (ctx === "cluster1" ? "cluster2" : "cluster1");

describe("Install Multi-Primary, verbatim, then the sidecar's checks (issue 6) on its clusters", {
  skip: root ? false : "local clusters need root",
}, () => {
  // ISTHMUS_GUIDE_REUSE=<folder where `isthmus demo --work-dir <folder>/work` ran with
  // ISTHMUS_HOME=<folder>/home, KUBECONFIG=<folder>/kubeconfig>: skip the guide and run the
  // later checks against those clusters, leaving them up (a development loop). The last two
  // checks stop cluster1's istiod and delete cluster2's remote secret: restore both by hand.
  const reuse = process.env.ISTHMUS_GUIDE_REUSE;
  // ISTHMUS_GUIDE_KEEP=1: leave the clusters and the folder (printed) for ISTHMUS_GUIDE_REUSE.
  const keep = process.env.ISTHMUS_GUIDE_KEEP === "1";
  let sb: Sandbox;
  let guideDone = false;
  /** The answers each cluster's sleep pod got in the guide's own requests. */
  const answers = new Map<Ctx, Answer[]>();

  before(
    async () => {
      sb = sandbox("guide", { CTX_CLUSTER1: "cluster1", CTX_CLUSTER2: "cluster2" });
      if (!reuse) return;
      Object.assign(sb.env, { ISTHMUS_HOME: join(reuse, "home"), KUBECONFIG: join(reuse, "kubeconfig"), HOME: reuse });
      for (const ctx of clusters)
        answers.set(ctx, await helloworldAnswers(sb, ctx, await firstPodName(sb, ctx, "sample", "app=sleep"), 20));
      guideDone = true;
    },
    { timeout: 300_000 },
  );
  after(
    async () => {
      if (keep) process.stderr.write(`ISTHMUS_GUIDE_KEEP: clusters left in ${sb?.dir}\n`);
      else await sb?.cleanup(reuse ? [] : clusters);
    },
    { timeout: 300_000 },
  );

  /** Later checks need the guide's clusters; without them they say so instead of failing in turn. */
  const guideUp = (t: TestContext): boolean => {
    if (!guideDone) t.skip("the guide did not complete");
    return guideDone;
  };
  const must = async (command: string, timeoutMs?: number) => {
    const r = await sb.sh(command, timeoutMs ? { timeoutMs } : {});
    assert.equal(r.code, 0, `\`${command}\` failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const assertBothVersions = (ctx: Ctx, got: readonly Answer[], when: string) => {
    const counts = countVersions(got);
    const lines = got.map((a) => a.text).join("\n");
    assert.equal(counts.get("failed") ?? 0, 0, `${when}, requests from ${ctx}'s sleep pod failed:\n${lines}`);
    assert.ok(
      (counts.get("v1") ?? 0) >= 5 && (counts.get("v2") ?? 0) >= 5,
      `${when}, from ${ctx}'s sleep pod: ${describeCounts(got)}; expected v1 and v2 at least 5 times each:\n${lines}`,
    );
  };

  it("runs every command of the guide and the answers toggle between v1 and v2 from both clusters", {
    skip: reuse ? "reusing the clusters of ISTHMUS_GUIDE_REUSE" : false,
    timeout: 900_000,
  }, async () => {
    // Before you begin: two clusters on network1, and a shared root with one intermediate per cluster as cacerts.
    for (const c of clusters) await must(`isthmus cluster create ${c} --network network1`);
    await must("isthmus x ca create-root --out-dir certs");
    for (const c of clusters) {
      await must(`isthmus x ca create-intermediate --cluster ${c} --root-dir certs --out-dir certs/${c}`);
      await must(`kubectl create namespace istio-system --context=${c}`);
      await must(
        `kubectl create secret generic cacerts -n istio-system --context=${c} --from-file=certs/${c}/ca-cert.pem --from-file=certs/${c}/ca-key.pem --from-file=certs/${c}/root-cert.pem --from-file=certs/${c}/cert-chain.pem`,
      );
    }

    const commands = guideCommands(readFileSync(join(sharedDir, "seed", "install-multi-primary.md"), "utf8"));
    for (const { command, expectedOutput } of commands) {
      const cmd = adaptCommand(command, join(sharedDir, "samples"));
      if (cmd.includes("-- curl helloworld.sample:5000/hello")) {
        // "Repeat this request several times": 20 times (issue 6), collecting the versions.
        const ctx = cmd.includes("CTX_CLUSTER1") ? "cluster1" : "cluster2";
        const got: Answer[] = [];
        for (let i = 0; i < 20; i++) got.push(versionOf(await must(cmd)));
        answers.set(ctx, got);
        continue;
      }
      if (expectedOutput.length > 0 && cmd.startsWith("kubectl get pod")) {
        // "Wait until the status is Running": poll until every pod shows the guide's READY and STATUS.
        const want = expectedOutput[1]?.split(/\s+/) ?? [];
        const r = await pollUntil(
          sb,
          cmd,
          (out) => {
            const rows = podRows(out);
            return rows.length > 0 && rows.every((row) => row.ready === want[1] && row.status === want[2]);
          },
          240_000,
        );
        assert.match(
          r.stdout,
          new RegExp(`\\s${want[1]?.replace("/", "\\/")}\\s+${want[2]}\\s`),
          `\`${cmd}\` never showed ${want[1]} ${want[2]}:\n${r.stdout}${r.stderr}`,
        );
        continue;
      }
      await must(cmd);
    }

    for (const ctx of clusters) assertBothVersions(ctx, answers.get(ctx) ?? [], "in the guide");
    guideDone = true;
  });

  it("helloworld v1 runs in cluster1, v2 in cluster2, sleep in both: every pod 2/2 Running with its sidecar", async (t) => {
    if (!guideUp(t)) return;
    for (const ctx of clusters) {
      const table = await must(`kubectl get pod --context=${ctx} -n sample`);
      const rows = podRows(table);
      const workloads = rows.map((r) => r.name.replace(/-[a-z0-9]+-[a-z0-9]{5}$/, "")).sort();
      assert.deepEqual(workloads, [`helloworld-${versionIn[ctx]}`, "sleep"], `pods in ${ctx}:\n${table}`);
      for (const r of rows) assert.ok(r.ready === "2/2" && r.status === "Running", `in ${ctx}:\n${table}`);
      const containers = await must(
        `kubectl get pod --context=${ctx} -n sample -o jsonpath='{range .items[*]}{.metadata.name}{":"}{.spec.containers[*].name}{"\\n"}{end}'`,
      );
      for (const line of containers.trim().split("\n")) {
        const app = line.startsWith("sleep") ? "sleep" : "helloworld";
        assert.deepEqual(line.split(":")[1]?.split(" ").sort(), [app, "istio-proxy"].sort(), `containers in ${ctx}`);
      }
      t.diagnostic(`${ctx}:\n${table.trim()}`);
    }
  });

  it("proxy-config endpoint of each sleep pod lists both helloworld endpoints with their clusters", {
    timeout: 120_000,
  }, async (t) => {
    if (!guideUp(t)) return;
    const want: string[] = [];
    for (const ctx of clusters) {
      const hello = await onePod(sb, ctx, "sample", "app=helloworld");
      want.push(`${hello.ip}:5000 HEALTHY OK ${helloworldCluster} ${ctx}`);
    }
    want.sort();
    for (const ctx of clusters) {
      const sleep = await firstPodName(sb, ctx, "sample", "app=sleep");
      const cmd = `isthmus proxy-config endpoint ${sleep}.sample --context ${ctx}`;
      // The guide's pods were Ready before its requests; the endpoints should be there at once,
      // and a few seconds of grace keeps a slow push from reading as a missing endpoint.
      const r = await pollUntil(
        sb,
        `${cmd} -o wide`,
        (out) => JSON.stringify(helloworldRows(out)) === JSON.stringify(want),
        30_000,
      );
      assert.equal(r.code, 0, `\`${cmd} -o wide\` failed (exit ${r.code}): ${r.stderr}`);
      assert.deepEqual(helloworldRows(r.stdout), want, `${cmd} -o wide:\n${r.stdout}`);
      // Without -o wide: istioctl's own columns, the same endpoints.
      const short = await must(cmd);
      assert.match(short.split("\n")[0] ?? "", /^ENDPOINT\s+STATUS\s+OUTLIER CHECK\s+CLUSTER\s*$/);
      for (const w of want) assert.match(short, new RegExp(`^${w.split(" ")[0]}\\s+HEALTHY\\s+OK\\s+`, "m"));
      t.diagnostic(`${cmd} -o wide:\n${r.stdout.trim()}`);
    }
  });

  it("each helloworld sidecar recorded the other cluster's sleep as its verified SPIFFE peer (mutual TLS)", {
    timeout: 60_000,
  }, async (t) => {
    if (!guideUp(t)) return;
    for (const server of clusters) {
      const client = other(server);
      const hello = await onePod(sb, server, "sample", "app=helloworld");
      const sent = (answers.get(client) ?? []).filter((a) => a.version === versionIn[server]).length;
      const r = await httpGet(`http://${hello.ip}:15090/stats/prometheus`);
      assert.equal(r.status, 200, `Prometheus of ${hello.name} in ${server}: ${r.body}`);
      const series = prometheusSeries(r.body, "istio_requests_total");
      const peer = {
        reporter: "destination",
        source_principal: "spiffe://cluster.local/ns/sample/sa/sleep",
        source_cluster: client,
        destination_cluster: server,
        destination_principal: "spiffe://cluster.local/ns/sample/sa/default",
        connection_security_policy: "mutual_tls",
        response_code: "200",
      };
      const recorded = sumMatching(series, peer);
      const fromOther = series.filter((s) => s.labels.reporter === "destination" && s.labels.source_cluster === client);
      t.diagnostic(
        `${hello.name} (${server}): ${recorded} requests from sleep in ${client} over mutual TLS; ${client}'s sleep got ${versionIn[server]} ${sent} times in the guide`,
      );
      assert.ok(sent >= 5, `${client}'s sleep got ${versionIn[server]} only ${sent} times in the guide`);
      assert.ok(
        recorded >= sent,
        `${hello.name}'s inbound recorded ${recorded} requests with the peer ${JSON.stringify(peer)}, fewer than the ${sent} answers ${client}'s sleep got from it; its series from ${client}:\n${fromOther.map((s) => JSON.stringify(s)).join("\n")}`,
      );
    }
  });

  // ---------------------------------------------------------------- destructive: last
  it("cluster1's control plane stopped: both versions still answer from both sleep pods", {
    timeout: 300_000,
  }, async (t) => {
    if (!guideUp(t)) return;
    await must("kubectl --context=cluster1 -n istio-system scale deploy istiod --replicas=0");
    const gone = await pollUntil(
      sb,
      "kubectl --context=cluster1 -n istio-system get pod -l app=istiod -o name",
      (out) => out.trim() === "",
      120_000,
    );
    assert.equal(gone.stdout.trim(), "", `cluster1's istiod pods are still there:\n${gone.stdout}${gone.stderr}`);
    const stoppedAt = Date.now();
    for (const ctx of clusters) {
      const got = await helloworldAnswers(sb, ctx, await firstPodName(sb, ctx, "sample", "app=sleep"), 20);
      t.diagnostic(`from ${ctx}, cluster1's istiod gone: ${describeCounts(got)}`);
      assertBothVersions(ctx, got, "with cluster1's istiod gone");
    }
    // Still none: the answers above came from proxies without cluster1's control plane.
    assert.equal(await must("kubectl --context=cluster1 -n istio-system get pod -l app=istiod -o name"), "");
    t.diagnostic(`40 requests over ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s without cluster1's istiod`);
  });

  it("cluster1's remote secret deleted in cluster2: within 2 s cluster2's sleep gets only v2", {
    timeout: 180_000,
  }, async (t) => {
    if (!guideUp(t)) return;
    const secret = "istio-remote-secret-cluster1";
    await must(`kubectl --context=cluster2 -n istio-system get secret ${secret}`);
    // Requests from the sleep pod's network namespace, run from the host: they go through its
    // sidecar as the sleep container's do, without kubectl exec's second of overhead per request.
    const sleep = await onePod(sb, "cluster2", "sample", "app=sleep");
    const traffic = new Traffic(sb, await podNetns(sb, sleep.ip));
    traffic.start();
    t.after(() => traffic.stop());
    const t0 = Date.now();
    await waitFor(
      "v1 and v2 answers from cluster2's sleep before the delete",
      async () => {
        const got = traffic.between(t0);
        return got.some((s) => s.version === "v1") && got.some((s) => s.version === "v2") ? true : undefined;
      },
      30_000,
    );
    const deleting = Date.now();
    await must(`kubectl --context=cluster2 -n istio-system delete secret ${secret}`);
    const deleted = Date.now();
    // The deadline is the issue's: every request sent 2 s or more after the delete returned answers v2.
    await waitFor(
      "10 requests sent 2 s after the delete",
      async () => (traffic.between(deleted + 2000).length >= 10 ? true : undefined),
      60_000,
    );
    await traffic.stop();
    // The figure: when the last v1 answer's request was sent, from the start of the delete
    // (kubectl itself takes a while, and the mesh may act before it returns).
    const lastV1 = traffic
      .between(deleting)
      .filter((s) => s.version === "v1")
      .at(-1);
    const late = traffic.between(deleted + 2000);
    t.diagnostic(
      `before the delete: ${summarize(traffic.between(t0, deleting)).text}; kubectl delete took ${deleted - deleting} ms; the last v1 answer was to a request sent ${lastV1 ? `${lastV1.at - deleting} ms after the delete started` : "before the delete started"}; sent 2 s or more after it returned: ${summarize(late).text}`,
    );
    assert.deepEqual(
      late.filter((s) => s.version !== "v2"),
      [],
      `requests sent 2 s or more after the delete must all answer v2: ${summarize(late).text}`,
    );

    // As the user sees it: the guide's request answers v2 only, and the proxy holds only v2's endpoint.
    const pod = await firstPodName(sb, "cluster2", "sample", "app=sleep");
    const got = await helloworldAnswers(sb, "cluster2", pod, 10);
    assert.deepEqual(
      got.map((a) => a.version),
      Array(10).fill("v2"),
      got.map((a) => a.text).join("\n"),
    );
    const v2 = await onePod(sb, "cluster2", "sample", "app=helloworld");
    const table = await must(`isthmus proxy-config endpoint ${pod}.sample --context cluster2 -o wide`);
    assert.deepEqual(helloworldRows(table), [`${v2.ip}:5000 HEALTHY OK ${helloworldCluster} cluster2`], table);
  });
});

/** The helloworld rows of a wide proxy-config endpoint table, each as one normalised line, sorted. */
function helloworldRows(table: string): string[] {
  return endpointRows(table)
    .filter((r) => r.cluster === helloworldCluster)
    .map((r) => `${r.endpoint} ${r.status} ${r.outlierCheck} ${r.cluster} ${r.clusterId}`)
    .sort();
}
