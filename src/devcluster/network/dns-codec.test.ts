import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeQuery, decodeResponse, encodeQuery, RecordType, Rcode } from "./dns-codec.js";
import type { Lookup } from "./services.js";
import { answerQuery } from "./services.js";

const table = {
  lookup(name: string): Lookup {
    if (name === "helloworld.sample.svc.cluster.local") return { found: true, addresses: ["10.201.0.20"] };
    if (name === "headless.sample.svc.cluster.local") return { found: true, addresses: ["10.200.1.2", "10.200.1.3"] };
    return { found: false };
  },
};

describe("DNS codec", () => {
  it("round-trips a query, lower-casing the name", () => {
    const q = decodeQuery(encodeQuery({ id: 4242, name: "HelloWorld.Sample.svc.cluster.local", type: RecordType.A }));
    assert.equal(q.id, 4242);
    assert.equal(q.recursionDesired, true);
    assert.deepEqual(q.questions, [{ name: "helloworld.sample.svc.cluster.local", type: 1, class: 1 }]);
  });

  it("follows compression pointers", () => {
    // header + question "a.b" + a second question that points at offset 12
    const base = encodeQuery({ id: 1, name: "a.b", type: 1 });
    const msg = Buffer.concat([base, Buffer.from([0xc0, 12, 0, 28, 0, 1])]);
    msg.writeUInt16BE(2, 4);
    assert.deepEqual(
      decodeQuery(msg).questions.map((q) => [q.name, q.type]),
      [
        ["a.b", 1],
        ["a.b", 28],
      ],
    );
  });

  const cases: { name: string; type: number; rcode: number; addresses: string[] }[] = [
    {
      name: "helloworld.sample.svc.cluster.local",
      type: RecordType.A,
      rcode: Rcode.NOERROR,
      addresses: ["10.201.0.20"],
    },
    { name: "helloworld.sample.svc.cluster.local", type: RecordType.AAAA, rcode: Rcode.NOERROR, addresses: [] },
    {
      name: "headless.sample.svc.cluster.local",
      type: RecordType.A,
      rcode: Rcode.NOERROR,
      addresses: ["10.200.1.2", "10.200.1.3"],
    },
    { name: "helloworld.sample.sample.svc.cluster.local", type: RecordType.A, rcode: Rcode.NXDOMAIN, addresses: [] },
    { name: "example.com", type: RecordType.A, rcode: Rcode.NXDOMAIN, addresses: [] },
  ];
  for (const c of cases) {
    it(`answers ${c.name} type ${c.type} with rcode ${c.rcode} and ${c.addresses.length} address(es)`, () => {
      const out = answerQuery(table, encodeQuery({ id: 7, name: c.name, type: c.type }));
      assert.ok(out);
      const r = decodeResponse(out);
      assert.equal(r.id, 7);
      assert.equal(r.rcode, c.rcode);
      assert.deepEqual(
        r.answers.map((a) => a.address),
        c.addresses,
      );
      assert.ok(r.answers.every((a) => a.name === c.name && a.type === RecordType.A));
    });
  }

  it("answers FORMERR to a truncated question", () => {
    const bad = encodeQuery({ id: 9, name: "abc.def", type: 1 }).subarray(0, 15);
    const out = answerQuery(table, bad);
    assert.ok(out);
    assert.equal(decodeResponse(Buffer.concat([out])).rcode, Rcode.FORMERR);
  });
});
