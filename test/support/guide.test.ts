import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { adaptCommand, guideCommands } from "./guide.js";

const seed = join(import.meta.dirname, "..", "..", "..", "shared", "seed", "install-multi-primary.md");

describe("guideCommands", () => {
  const commands = guideCommands(readFileSync(seed, "utf8"));

  it("reads every command of the guide, in order", () => {
    assert.equal(commands.length, 22);
    assert.match(commands[0]?.command ?? "", /^cat <<EOF > cluster1\.yaml\n[\s\S]*clusterName: cluster1[\s\S]*\nEOF$/);
    assert.equal(commands[1]?.command, 'istioctl install --context="${CTX_CLUSTER1}" -f cluster1.yaml');
    assert.match(
      commands[4]?.command ?? "",
      /^istioctl x create-remote-secret \\\n {4}--context="\$\{CTX_CLUSTER1\}" \\\n {4}--name=cluster1 \| \\\n {4}kubectl apply -f - --context="\$\{CTX_CLUSTER2\}"$/,
    );
    assert.match(commands.at(-1)?.command ?? "", /-- curl helloworld\.sample:5000\/hello$/);
  });

  it("keeps the output the guide shows after a command", () => {
    const get = commands.find((c) => c.command.includes("-l app=helloworld") && c.command.includes("CTX_CLUSTER1"));
    assert.match(get?.expectedOutput[1] ?? "", /^helloworld-v1-\S+\s+2\/2\s+Running/);
  });

  it("puts isthmus in place of istioctl and the samples beside the checkout", () => {
    const cmd = commands.find((c) => c.command.includes("-l version=v1"))?.command ?? "";
    assert.match(adaptCommand(cmd, "/s"), /-f \/s\/helloworld\.yaml \\\n {4}-l version=v1 -n sample/);
    assert.doesNotMatch(commands.map((c) => adaptCommand(c.command, "/s")).join("\n"), /istioctl|@samples/);
  });
});
