import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildCaptureRules, defaultCaptureOptions, parseCaptureArgs } from "./iptables.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");
const istioArgs = [
  "-p",
  "15001",
  "-z",
  "15006",
  "-u",
  "1337",
  "-m",
  "REDIRECT",
  "-i",
  "*",
  "-x",
  "",
  "-b",
  "*",
  "-d",
  "15090,15021,15020",
];

describe("parseCaptureArgs", () => {
  it("reads the arguments the injector gives istio-init", () => {
    const parsed = parseCaptureArgs(istioArgs);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, defaultCaptureOptions);
  });

  it("names every bad flag and value", () => {
    const parsed = parseCaptureArgs(["-p", "0", "-m", "TPROXY", "-x", "10.0.0.0", "--bogus"]);
    assert.ok(!parsed.ok);
    assert.deepEqual(parsed.reasons, [
      `-p "0": expected a port number from 1 to 65535`,
      `-m "TPROXY": only REDIRECT is supported (TPROXY is not)`,
      `unknown flag "--bogus"`,
      `CIDR "10.0.0.0": expected a.b.c.d/n or *`,
    ]);
  });
});

describe("buildCaptureRules", () => {
  it("matches the reviewed rules for Istio's default arguments", () => {
    const golden = join(here, "testdata", "default.rules");
    const rules = buildCaptureRules(defaultCaptureOptions);
    if (process.env.UPDATE_GOLDEN) writeFileSync(golden, rules);
    assert.equal(rules, readFileSync(golden, "utf8"));
  });

  it("captures only the listed inbound ports when not *", () => {
    const rules = buildCaptureRules({ ...defaultCaptureOptions, includeInboundPorts: ["5000"] });
    assert.match(rules, /-A ISTIO_INBOUND -p tcp --dport 5000 -j ISTIO_IN_REDIRECT/);
    assert.doesNotMatch(rules, /-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT/);
  });
});

// The rules and SO_ORIGINAL_DST together, in a network namespace of the test's own (needs root and iptables).
describe("capture in a network namespace", { skip: process.getuid?.() !== 0 ? "needs root" : false }, () => {
  it("redirects an app's outbound connection to 15001, where its original destination is readable", async (t) => {
    const ns = `isth-test-cap-${randomBytes(3).toString("hex")}`;
    execFileSync("ip", ["netns", "add", ns]);
    t.after(() => execFileSync("ip", ["netns", "delete", ns]));
    const inNs = (...cmd: string[]) => execFileSync("ip", ["netns", "exec", ns, ...cmd]);
    inNs("ip", "link", "set", "lo", "up");
    // A veth pair inside the namespace gives the destination a route off loopback; REDIRECT rewrites
    // the packet before it could go anywhere, and the pair never leaves the namespace anyway.
    inNs("ip", "link", "add", "isthcap0", "type", "veth", "peer", "name", "isthcap1");
    inNs("ip", "addr", "add", "10.207.255.1/24", "dev", "isthcap0");
    inNs("ip", "link", "set", "isthcap0", "up");
    inNs("ip", "link", "set", "isthcap1", "up");
    const script = `
      import { buildCaptureRules, defaultCaptureOptions, applyCaptureRules } from ${JSON.stringify(join(here, "iptables.ts"))};
      import { originalDestination } from ${JSON.stringify(join(here, "original-dst.ts"))};
      import net from "node:net";
      await applyCaptureRules(buildCaptureRules(defaultCaptureOptions));
      const server = net.createServer((s) => { s.end(JSON.stringify(originalDestination(s))); });
      await new Promise((r) => server.listen(15001, "0.0.0.0", r));
      const client = net.connect(5000, "10.207.255.9");
      let body = "";
      client.on("data", (d) => { body += d; });
      client.on("end", () => { console.log(body); server.close(); });
    `;
    const child = spawn(
      "ip",
      ["netns", "exec", ns, process.execPath, "--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, err);
    assert.deepEqual(JSON.parse(out.trim()), { address: "10.207.255.9", port: 5000 });
  });
});
