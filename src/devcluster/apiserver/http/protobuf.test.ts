import assert from "node:assert/strict";
import { test } from "node:test";
import { ProtobufBodyError, decodeKubernetesProtobuf, isKubernetesProtobuf } from "./protobuf.js";

/** Bytes kubectl 1.32 sent for `kubectl create ns sample` (recorded with -v=8). */
const createNamespace = Buffer.from(
  "6b3873000a0f0a0276311209" +
    "4e616d657370616365121e0a160a0673616d706c65120" +
    "01a0022002a0032003800420012001a020a001a002200",
  "hex",
);

/** `kubectl auth can-i create pods -n sample`. */
const canI = Buffer.from(
  "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f76311217" +
    "53656c665375626a6563744163636573735265766965771" +
    "23e0a100a0012001a0022002a00320038004200122" +
    "00a1e0a0673616d706c651206637265617465" +
    "1a0022002a04706f64733200" +
    "3a001a08080012001a0020001a002200",
  "hex",
);

test("decodes kubectl's namespace create, dropping Go's empty fields", () => {
  assert.equal(isKubernetesProtobuf(createNamespace), true);
  assert.deepEqual(decodeKubernetesProtobuf(createNamespace), {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "sample" },
    spec: {},
    status: {},
  });
});

test("decodes a SelfSubjectAccessReview with its resource attributes", () => {
  const got = decodeKubernetesProtobuf(canI);
  assert.equal(got.kind, "SelfSubjectAccessReview");
  assert.equal(got.apiVersion, "authorization.k8s.io/v1");
  assert.deepEqual(got.spec, { resourceAttributes: { namespace: "sample", verb: "create", resource: "pods" } });
});

test("maps, bytes and repeated strings (with empty members) keep their JSON shapes", () => {
  // Secret s1 in default, data {a: "b"}, type Opaque, as `kubectl create secret generic` sends it.
  const secret = Buffer.from(
    "6b3873000a0c0a0276311206536563726574122b0a190a02733112001a0764656661756c7422002a0032003800420012060a0161120162" +
      "1a064f70617175651a002200",
    "hex",
  );
  assert.deepEqual(decodeKubernetesProtobuf(secret), {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s1", namespace: "default" },
    data: { a: Buffer.from("b").toString("base64") },
    type: "Opaque",
  });
  // Role r1: rules [{verbs [get], apiGroups [""], resources [pods]}].
  const role = Buffer.from(
    "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120452" +
      "6f6c65122a0a190a02723112001a0764656661756c7422002a00320038004200120d0a03676574120" +
      "01a04706f64731a002200",
    "hex",
  );
  assert.deepEqual(decodeKubernetesProtobuf(role).rules, [{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }]);
});

test("refuses kinds it does not describe and unknown non-empty fields, naming them", () => {
  // "batch/v1" (8 bytes) + "Job" (3 bytes): typeMeta of 2+8+2+3 = 15 bytes.
  const job = Buffer.concat([
    Buffer.from("6b387300", "hex"),
    Buffer.from([0x0a, 0x0f, 0x0a, 0x08, ...Buffer.from("batch/v1"), 0x12, 0x03, ...Buffer.from("Job")]),
  ]);
  assert.throws(
    () => decodeKubernetesProtobuf(job),
    (err: unknown) => err instanceof ProtobufBodyError && err.unsupported && /Job \(batch\/v1\)/.test(err.message),
  );
  // A Namespace whose raw body carries field 9 (unknown here) with content.
  const raw = Buffer.from([0x4a, 0x01, 0x78]);
  const env = Buffer.concat([
    Buffer.from("6b387300", "hex"),
    Buffer.from([0x0a, 0x0f, 0x0a, 0x02, ...Buffer.from("v1"), 0x12, 0x09, ...Buffer.from("Namespace")]),
    Buffer.from([0x12, raw.length]),
    raw,
  ]);
  assert.throws(
    () => decodeKubernetesProtobuf(env),
    (err: unknown) => err instanceof ProtobufBodyError && /field number 9 of Namespace/.test(err.message),
  );
  assert.throws(
    () => decodeKubernetesProtobuf(Buffer.from("6b3873000aff", "hex")),
    (err: unknown) => err instanceof ProtobufBodyError && !err.unsupported,
  );
});
