import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { it } from "node:test";
import { createHelloworld } from "./helloworld.js";

it("helloworld answers /hello and /health like the sample", async (t) => {
  const server = createHelloworld({ version: "v2", instance: "helloworld-v2-abc" });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const hello = await fetch(`${base}/hello`);
  assert.equal(hello.status, 200);
  assert.equal(hello.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(await hello.text(), "Hello version: v2, instance: helloworld-v2-abc\n");
  const health = await fetch(`${base}/health`);
  assert.equal(await health.text(), "Helloworld is healthy");
  assert.equal((await fetch(`${base}/nope`)).status, 404);
});
