// HTTP/2 through two sidecars on loopback: a gRPC client → client sidecar (h2c prior knowledge on
// the outbound listener) → mutual TLS with ALPN istio-h2 → server sidecar → h2c to a gRPC server;
// unary calls with trailers, a server stream, a gRPC error status, and a plain HTTP/2 request
// answered by an HTTP/1.1 app behind the server sidecar.
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  type After,
  endpoint,
  get,
  helloId,
  meshConfig,
  sleepId,
  sleepToHelloOverMtls,
  startApp,
  startClientSide,
  startServerSide,
  workloadCert,
} from "./fixtures.test.js";
import type { WorkloadCertificate } from "./tls/identity.js";

const bytes = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};
/** A two-method service with raw byte messages, so the test needs no .proto file. */
const greeter: grpc.ServiceDefinition = {
  hello: {
    path: "/isthmus.test.Greeter/Hello",
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
  count: {
    path: "/isthmus.test.Greeter/Count",
    requestStream: false,
    responseStream: true,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
};

interface GreeterClient extends grpc.Client {
  hello(
    req: Buffer,
    meta: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
  ): grpc.ClientUnaryCall;
  count(req: Buffer): grpc.ClientReadableStream<Buffer>;
}
const GreeterClient = grpc.makeGenericClientConstructor(greeter, "Greeter") as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => GreeterClient;

async function startGrpcServer(t: After, seen: grpc.Metadata[]): Promise<number> {
  const server = new grpc.Server();
  server.addService(greeter, {
    hello: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      seen.push(call.metadata);
      const name = call.request.toString();
      if (name === "nobody") {
        cb({ code: grpc.status.NOT_FOUND, details: "no such greeter" });
        return;
      }
      const trailer = new grpc.Metadata();
      trailer.set("x-greeted", name);
      cb(null, Buffer.from(`hello ${name}`), trailer);
    },
    count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.after(() => server.forceShutdown());
  return port;
}

describe("HTTP/2 and gRPC through the sidecars", () => {
  let sleepCert: WorkloadCertificate;
  let helloCert: WorkloadCertificate;
  before(async () => {
    sleepCert = await workloadCert(sleepId, "cluster1");
    helloCert = await workloadCert(helloId, "cluster2");
  });

  it("carries unary calls with trailers, a server stream and an error status over mutual TLS", async (t) => {
    const seen: grpc.Metadata[] = [];
    const appPort = await startGrpcServer(t, seen);
    const server = await startServerSide(t, { appPort, cert: helloCert, mode: "STRICT", appProtocol: "h2" });
    const client = await startClientSide(t, {
      config: meshConfig({ endpoints: [endpoint(server.port)], http2: true }),
      cert: sleepCert,
    });
    const stub = new GreeterClient(`127.0.0.1:${client.port}`, grpc.credentials.createInsecure(), {
      "grpc.default_authority": "helloworld.sample:5000",
      "grpc.use_local_subchannel_pool": 1,
    });
    t.after(() => stub.close());

    const unary = (name: string) =>
      new Promise<{ err: grpc.ServiceError | null; res?: Buffer; trailers?: grpc.Metadata }>((resolve) => {
        let res: Buffer | undefined;
        let err: grpc.ServiceError | null = null;
        const call = stub.hello(Buffer.from(name), new grpc.Metadata(), (e, r) => {
          err = e;
          res = r;
        });
        call.on("status", (s: grpc.StatusObject) => resolve({ err, ...(res ? { res } : {}), trailers: s.metadata }));
      });
    const ok = await unary("sleep");
    assert.equal(ok.err, null);
    assert.equal(ok.res?.toString(), "hello sleep");
    assert.deepEqual(ok.trailers?.get("x-greeted"), ["sleep"], "the server's trailers reached the client");
    // STRICT inbound and a verified peer: the app learns the client's SPIFFE ID.
    assert.match(String(seen[0]?.get("x-forwarded-client-cert")[0]), new RegExp(`URI=${sleepId}$`));

    const missing = await unary("nobody");
    assert.equal(missing.err?.code, grpc.status.NOT_FOUND);
    assert.match(missing.err?.details ?? "", /no such greeter/);

    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = stub.count(Buffer.from("5"));
      stream.on("data", (d: Buffer) => got.push(d.toString()));
      stream.on("error", reject);
      stream.on("end", () => resolve());
    });
    assert.deepEqual(got, ["1", "2", "3", "4", "5"]);

    assert.equal(server.rt.metrics.requestCount(sleepToHelloOverMtls), 3, "three gRPC calls arrived over mutual TLS");
  });

  it("answers an h2c prior-knowledge request from an HTTP/1.1 app", async (t) => {
    const appPort = await startApp(t, (req, res) => {
      res.setHeader("x-seen-xfcc", String(req.headers["x-forwarded-client-cert"] ?? ""));
      res.end(`Hello over ${req.httpVersion} for ${req.headers.host} ${req.url}\n`);
    });
    const server = await startServerSide(t, { appPort, cert: helloCert });
    const client = await startClientSide(t, {
      config: meshConfig({ endpoints: [endpoint(server.port)] }),
      cert: sleepCert,
    });
    const session = http2.connect(`http://127.0.0.1:${client.port}`);
    t.after(() => session.destroy());
    const answer = await new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const req = session.request({ ":path": "/hello?x=1", ":authority": "helloworld.sample:5000" });
        let body = "";
        let headers: http2.IncomingHttpHeaders = {};
        req.on("response", (h) => {
          headers = h;
        });
        req.on("data", (d: Buffer) => {
          body += d.toString();
        });
        req.on("end", () => resolve({ status: Number(headers[":status"]), headers, body }));
        req.on("error", reject);
        req.end();
      },
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "Hello over 1.1 for helloworld.sample:5000 /hello?x=1\n");
    assert.match(String(answer.headers["x-seen-xfcc"]), new RegExp(`URI=${sleepId}$`));

    // A host no route knows gets Envoy's 404 over HTTP/2 as well.
    const nr = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ":path": "/", ":authority": "unknown.example:5000" });
      req.on("response", (h) => resolve(Number(h[":status"])));
      req.on("error", reject);
      req.resume();
      req.end();
    });
    assert.equal(nr, 404);
  });

  it("carries an HTTP/1.1 request to an app that speaks only h2c (a GRPC/HTTP2 port)", async (t) => {
    const app = http2.createServer((req, res) =>
      res.end(`h2 app saw ${req.method} ${req.url} for ${req.headers[":authority"]}`),
    );
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    const server = await startServerSide(t, { appPort, cert: helloCert, appProtocol: "h2" });
    const client = await startClientSide(t, {
      config: meshConfig({ endpoints: [endpoint(server.port)] }),
      cert: sleepCert,
    });
    const res = await get(client.port, "helloworld.sample:5000", "/hello");
    assert.deepEqual(res, { status: 200, body: "h2 app saw GET /hello for helloworld.sample:5000" });
  });
});
