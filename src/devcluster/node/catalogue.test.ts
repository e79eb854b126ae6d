import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveImage, unknownImageMessage } from "./catalogue.js";

const ctx = { repoRoot: "/repo", nodeBinary: "/usr/bin/node" };
const isthmus = ["/usr/bin/node", "/repo/bin/isthmus"];

describe("image catalogue", () => {
  for (const [image, version] of [
    ["docker.io/istio/examples-helloworld-v1", "v1"],
    ["docker.io/istio/examples-helloworld-v1:1.0", "v1"],
    ["istio/examples-helloworld-v2", "v2"],
    ["registry.istio.io/release/examples-helloworld-v2:1.0", "v2"],
  ] as const) {
    it(`runs ${image} as helloworld ${version}`, () => {
      assert.deepEqual(resolveImage({ name: "c", image }, ctx), {
        argv: [...isthmus, "program", "helloworld"],
        env: { SERVICE_VERSION: version },
      });
    });
  }
  it("runs curl images' command and args with the host's tools", () => {
    for (const image of ["curlimages/curl", "docker.io/curlimages/curl:8.16.0"]) {
      assert.deepEqual(resolveImage({ name: "c", image, command: ["/bin/sleep"], args: ["infinity"] }, ctx)?.argv, [
        "/bin/sleep",
        "infinity",
      ]);
    }
    assert.deepEqual(resolveImage({ name: "c", image: "curlimages/curl", args: ["-sS", "x"] }, ctx)?.argv, [
      "curl",
      "-sS",
      "x",
    ]);
  });
  it("runs pilot and proxyv2 images as this checkout's isthmus with the container's args", () => {
    assert.deepEqual(
      resolveImage({ name: "c", image: "docker.io/istio/pilot:1.24.0", args: ["discovery"] }, ctx)?.argv,
      [...isthmus, "discovery"],
    );
    assert.deepEqual(
      resolveImage({ name: "c", image: "localhost:5000/isthmus/proxyv2:dev", args: ["proxy", "sidecar"] }, ctx)?.argv,
      [...isthmus, "proxy", "sidecar"],
    );
    assert.deepEqual(resolveImage({ name: "c", image: "isthmus/grpc-echo:latest" }, ctx)?.argv, [
      ...isthmus,
      "program",
      "grpc-echo",
    ]);
  });
  it("refuses other images, naming what a local cluster can run", () => {
    for (const image of ["nginx", "docker.io/istio/examples-bookinfo-ratings-v1", "pilotx:1", "curlimages/curlx"]) {
      assert.equal(resolveImage({ name: "c", image }, ctx), undefined, image);
    }
    assert.match(unknownImageMessage("nginx"), /image "nginx" is not available.*helloworld.*curl.*pilot/);
  });
});
