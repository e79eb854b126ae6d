// The guide itself: every command of shared/seed/install-multi-primary.md, run verbatim with
// isthmus in place of istioctl, CTX_CLUSTER1/CTX_CLUSTER2 set, the guide's own manifests from
// shared/samples and the machine's kubectl. The check is the guide's: answers from each
// cluster's sleep pod toggle between v1 and v2.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { adaptCommand, guideCommands } from "./support/guide.js";
import { pollUntil, sandbox, sharedDir } from "./support/shell.js";

const root = process.getuid?.() === 0;

describe("Install Multi-Primary, verbatim", { skip: root ? false : "local clusters need root" }, () => {
  it("runs every command of the guide and the answers toggle between v1 and v2 from both clusters", {
    timeout: 900_000,
  }, async (t) => {
    const sb = sandbox("guide", { CTX_CLUSTER1: "cluster1", CTX_CLUSTER2: "cluster2" });
    t.after(() => sb.cleanup(["cluster1", "cluster2"]));
    const must = async (command: string) => {
      const r = await sb.sh(command);
      assert.equal(r.code, 0, `\`${command}\` failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      return r;
    };

    // Before you begin: two clusters on network1, and a shared root with one intermediate per cluster as cacerts.
    for (const c of ["cluster1", "cluster2"]) await must(`isthmus cluster create ${c} --network network1`);
    await must("isthmus x ca create-root --out-dir certs");
    for (const c of ["cluster1", "cluster2"]) {
      await must(`isthmus x ca create-intermediate --cluster ${c} --root-dir certs --out-dir certs/${c}`);
      await must(`kubectl create namespace istio-system --context=${c}`);
      await must(
        `kubectl create secret generic cacerts -n istio-system --context=${c} --from-file=certs/${c}/ca-cert.pem --from-file=certs/${c}/ca-key.pem --from-file=certs/${c}/root-cert.pem --from-file=certs/${c}/cert-chain.pem`,
      );
    }

    const commands = guideCommands(readFileSync(join(sharedDir, "seed", "install-multi-primary.md"), "utf8"));
    const answers = new Map<string, string[]>();
    for (const { command, expectedOutput } of commands) {
      const cmd = adaptCommand(command, join(sharedDir, "samples"));
      if (cmd.includes("-- curl helloworld.sample:5000/hello")) {
        // "Repeat this request several times": ten times, collecting the versions.
        const ctx = cmd.includes("CTX_CLUSTER1") ? "cluster1" : "cluster2";
        const got: string[] = [];
        for (let i = 0; i < 10; i++) got.push((await must(cmd)).stdout.trim());
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
            const rows = out.trim().split("\n").slice(1);
            return (
              rows.length > 0 && rows.every((row) => row.split(/\s+/)[1] === want[1] && row.split(/\s+/)[2] === want[2])
            );
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

    for (const ctx of ["cluster1", "cluster2"]) {
      const got = answers.get(ctx) ?? [];
      for (const a of got) assert.match(a, /^Hello version: v[12], instance: helloworld-v[12]-[a-z0-9]+-[a-z0-9]{5}$/);
      const v1 = got.filter((a) => a.includes("version: v1")).length;
      const v2 = got.filter((a) => a.includes("version: v2")).length;
      assert.ok(
        v1 >= 3 && v2 >= 3,
        `from ${ctx}'s sleep pod: v1 ${v1} times, v2 ${v2} times; expected both to answer:\n${got.join("\n")}`,
      );
    }
  });
});
