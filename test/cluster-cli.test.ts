// `isthmus cluster` as a user drives it: two clusters side by side in one kubeconfig, objects
// surviving stop/start with their resourceVersion, one-line errors for bad input, and nothing
// of the project left on the machine once both clusters are deleted.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { lookupCluster } from "../src/devcluster/network/index.js";
import { pollUntil, sandbox, sharedDir } from "./support/shell.js";

const root = process.getuid?.() === 0;

describe("isthmus cluster", { skip: root ? false : "local clusters need root" }, () => {
  it("runs two clusters side by side with real pods, keeps objects across stop/start, refuses bad input, and cleans up", {
    timeout: 600_000,
  }, async (t) => {
    const sb = sandbox("cluster-cli");
    t.after(() => sb.cleanup(["alpha", "beta"]));
    const must = async (command: string) => {
      const r = await sb.sh(command);
      assert.equal(r.code, 0, `\`${command}\` failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      return r;
    };

    await must("isthmus cluster create alpha --network cli-net");
    await must("isthmus cluster create beta --network cli-net");
    const kubeconfig = YAML.parse(readFileSync(join(sb.dir, "kubeconfig"), "utf8")) as { contexts: { name: string }[] };
    assert.deepEqual(kubeconfig.contexts.map((c) => c.name).sort(), ["alpha", "beta"]);
    for (const c of ["alpha", "beta"])
      assert.match((await must(`kubectl --context ${c} get nodes`)).stdout, new RegExp(`${c}-control-plane\\s+Ready`));
    assert.match((await must("isthmus cluster list")).stdout, /alpha\s+cli-net\s+Ready[\s\S]*beta\s+cli-net\s+Ready/);

    // Bad input: one line, what to do, non-zero exit, nothing created.
    for (const [command, message] of [
      ["isthmus cluster create Bad_Name", /invalid cluster name "Bad_Name": use lower-case letters/],
      ["isthmus cluster create alpha", /cluster "alpha" already exists and is running/],
      ["isthmus cluster create gamma --api-port 99999", /invalid --api-port "99999"/],
      ["isthmus cluster delete nosuch", /cluster "nosuch" does not exist/],
    ] as const) {
      const r = await sb.sh(command);
      assert.notEqual(r.code, 0, command);
      assert.match(r.stderr, message, command);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${command} printed a stack trace`);
    }
    const alphaPort = /:(\d+)/.exec(
      (await must("isthmus cluster list")).stdout.split("\n").find((l) => l.startsWith("alpha")) ?? "",
    )?.[1];
    const clash = await sb.sh(`isthmus cluster create gamma --network cli-net --api-port ${alphaPort}`);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, new RegExp(`${alphaPort}`));
    assert.doesNotMatch((await must("isthmus cluster list")).stdout, /gamma/);

    // Pods run for real (issue 3): the guide's manifests, DNS and ClusterIPs, pod to pod across clusters.
    const samples = join(sharedDir, "samples");
    for (const c of ["alpha", "beta"]) await must(`kubectl --context ${c} create ns sample`);
    await must(`kubectl --context alpha apply -f ${samples}/helloworld.yaml -l service=helloworld -n sample`);
    await must(`kubectl --context alpha apply -f ${samples}/helloworld.yaml -l version=v1 -n sample`);
    for (const c of ["alpha", "beta"]) await must(`kubectl --context ${c} apply -f ${samples}/sleep.yaml -n sample`);
    for (const [c, app] of [
      ["alpha", "helloworld"],
      ["alpha", "sleep"],
      ["beta", "sleep"],
    ]) {
      await must(`kubectl --context ${c} wait -n sample --for=condition=Ready pod -l app=${app} --timeout=240s`);
    }
    const sleepPod = async (c: string) =>
      (await must(`kubectl --context ${c} get pod -n sample -l app=sleep -o jsonpath='{.items[0].metadata.name}'`))
        .stdout;
    const hello = await must(
      `kubectl --context alpha exec -n sample -c sleep ${await sleepPod("alpha")} -- curl -sS helloworld.sample:5000/hello`,
    );
    assert.match(hello.stdout, /^Hello version: v1, instance: helloworld-v1-[a-z0-9]+-[a-z0-9]{5}\n$/);
    const helloIp = (
      await must("kubectl --context alpha get pod -n sample -l app=helloworld -o jsonpath='{.items[0].status.podIP}'")
    ).stdout;
    assert.match(helloIp, /^10\.200\.\d+\.\d+$/);
    const across = await must(
      `kubectl --context beta exec -n sample -c sleep ${await sleepPod("beta")} -- curl -sS --max-time 10 ${helloIp}:5000/hello`,
    );
    assert.match(across.stdout, /^Hello version: v1/);
    const readyEndpoints = async () =>
      (
        await must(
          "kubectl --context alpha get endpointslices -n sample -l kubernetes.io/service-name=helloworld -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{\"\\n\"}{end}'",
        )
      ).stdout
        .split("\n")
        .filter((l) => l.endsWith(" true"));
    assert.deepEqual(await readyEndpoints(), [`${helloIp} true`]);
    await must("kubectl --context alpha scale deployment helloworld-v1 -n sample --replicas=3");
    const deadline = Date.now() + 240_000;
    let three = await readyEndpoints();
    while (three.length !== 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      three = await readyEndpoints();
    }
    assert.equal(three.length, 3, `ready endpoints after scaling to 3: ${three.join(", ")}`);
    const victim = (
      await must("kubectl --context alpha get pod -n sample -l app=helloworld -o jsonpath='{.items[0].metadata.name}'")
    ).stdout;
    await must(`kubectl --context alpha delete pod -n sample ${victim}`);
    const back = await pollUntil(
      sb,
      "kubectl --context alpha get pod -n sample -l app=helloworld --no-headers",
      (out) =>
        !out.includes(victim) &&
        out
          .trim()
          .split("\n")
          .filter((l) => /\s1\/1\s+Running\s/.test(l)).length === 3,
      240_000,
    );
    assert.doesNotMatch(back.stdout, new RegExp(victim), "the deleted pod is gone");
    assert.equal(back.stdout.trim().split("\n").length, 3, `a deleted pod comes back:\n${back.stdout}`);

    // An image the node cannot run says why, in describe and in the pod's status.
    await must("kubectl --context alpha run nope -n sample --image=example.com/unknown/app:1.0 --restart=Never");
    const waiting = await pollUntil(
      sb,
      "kubectl --context alpha get pod nope -n sample -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}'",
      (out) => out === "ErrImagePull" || out === "ImagePullBackOff",
      120_000,
    );
    assert.match(waiting.stdout, /ErrImagePull|ImagePullBackOff/);
    assert.match(
      (await must("kubectl --context alpha describe pod nope -n sample")).stdout,
      /example\.com\/unknown\/app:1\.0[\s\S]*(local cluster can run|can run)/,
    );

    // Deleting the namespace removes everything in it.
    await must("kubectl --context alpha delete ns sample --timeout=180s");
    assert.match((await sb.sh("kubectl --context alpha get ns sample")).stderr, /NotFound/);
    assert.equal(
      (
        await must(
          "kubectl --context alpha get pods,svc,deploy,rs,endpointslices -n sample --no-headers 2>/dev/null | wc -l",
        )
      ).stdout.trim(),
      "0",
    );

    // Objects and their resourceVersion survive stop/start.
    await must("kubectl --context alpha create configmap keep --from-literal=a=1");
    const before = (await must("kubectl --context alpha get configmap keep -o jsonpath='{.metadata.resourceVersion}'"))
      .stdout;
    await must("isthmus cluster stop alpha");
    assert.match((await must("isthmus cluster list")).stdout, /alpha\s+cli-net\s+Stopped/);
    assert.notEqual((await sb.sh("kubectl --context alpha get configmap keep --request-timeout=5s")).code, 0);
    await must("isthmus cluster start alpha");
    assert.equal(
      (await must("kubectl --context alpha get configmap keep -o jsonpath='{.metadata.resourceVersion}:{.data.a}'"))
        .stdout,
      `${before}:1`,
    );
    assert.notEqual(before, "");

    // Delete both: contexts gone, and no namespace, link or route of these clusters left.
    const nets = ["alpha", "beta"].map((c) => lookupCluster({ home: join(sb.dir, "home"), clusterName: c }));
    const names = nets.flatMap((n) => (n ? [`isth-${n.clusterTag}-`, n.bridge, n.dummy] : []));
    assert.equal(names.length, 6, "both clusters are in the machine-wide registry");
    await must("isthmus cluster delete alpha beta");
    const left = (
      await must("ip netns list; ip -o link show; ip route show table all; iptables-save 2>/dev/null || true")
    ).stdout
      .split("\n")
      .filter((l) => names.some((n) => l.includes(n)));
    assert.deepEqual(left, [], "kernel objects of the deleted clusters remain");
    const after = YAML.parse(readFileSync(join(sb.dir, "kubeconfig"), "utf8")) as { contexts: { name: string }[] };
    assert.deepEqual(after.contexts, []);
    const registry = readFileSync("/run/isthmus/registry.json", "utf8");
    assert.doesNotMatch(
      registry,
      new RegExp(sb.dir.replace(/[/.]/g, "\\$&")),
      "the machine-wide registry still holds this run's allocations",
    );
  });
});
