import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "./errors.js";
import { defineEnv, envFrom, parseBool, parseDuration, parsePort, readEnv } from "./env.js";

describe("parseDuration", () => {
  for (const [raw, ms] of [
    ["100ms", 100],
    ["30s", 30_000],
    ["1m30s", 90_000],
    ["24h", 86_400_000],
    ["1.5s", 1500],
  ] as const) {
    it(`reads ${raw} as ${ms} ms`, () => assert.equal(parseDuration(raw), ms));
  }
  for (const raw of ["", "10", "5 s", "10x", "s"]) {
    it(`refuses ${JSON.stringify(raw)}`, () => assert.throws(() => parseDuration(raw), /expected a duration/));
  }
});

describe("readEnv", () => {
  const after = defineEnv({ name: "T_AFTER", description: "test", defaultValue: 100, parse: parseDuration });
  const port = defineEnv({ name: "T_PORT", description: "test", defaultValue: 15010, parse: parsePort });
  const flag = defineEnv({ name: "T_FLAG", description: "test", defaultValue: false, parse: parseBool });

  it("uses defaults for unset and empty variables", () => {
    assert.deepEqual(readEnv(envFrom({ T_PORT: "" }), { after, port, flag }), { after: 100, port: 15010, flag: false });
  });

  it("reports every bad value at once, naming the variable and value", () => {
    const err = (() => {
      try {
        readEnv(envFrom({ T_AFTER: "soon", T_PORT: "70000", T_FLAG: "true" }), { after, port, flag });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 2);
    assert.match(err.problems[0] ?? "", /T_AFTER="soon"/);
    assert.match(err.problems[1] ?? "", /T_PORT="70000"/);
  });
});
