/**
 * A small gRPC echo server for tests of proxyless xDS clients (`isthmus program grpc-echo`):
 * unary `/isthmus.echo.Echo/Echo` on GRPC_ECHO_PORT (default 7070) answers with the name of
 * the pod that served it (POD_NAME, else HOSTNAME). Messages are raw UTF-8 bytes, no .proto
 * needed: clients call it with makeUnaryRequest and identity (de)serialisers.
 */
import * as grpc from "@grpc/grpc-js";

export const GRPC_ECHO_PATH = "/isthmus.echo.Echo/Echo";
export const GRPC_ECHO_DEFAULT_PORT = 7070;

const bytes = {
  serialize: (s: string) => Buffer.from(s, "utf8"),
  deserialize: (b: Buffer) => b.toString("utf8"),
};

/** The service definition, shared by the server and by clients. */
export const grpcEchoService: grpc.ServiceDefinition = {
  Echo: {
    path: GRPC_ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
};

/** Starts an echo server answering with `name`; resolves with the server and its bound port. */
export async function startGrpcEcho(opts: {
  name: string;
  host?: string;
  port?: number;
}): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(grpcEchoService, {
    Echo: (_call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => cb(null, opts.name),
  } as grpc.UntypedServiceImplementation);
  const addr = `${opts.host ?? "0.0.0.0"}:${opts.port ?? GRPC_ECHO_DEFAULT_PORT}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`grpc-echo cannot listen on ${addr}: ${err.message}`)) : resolve(p),
    ),
  );
  return { server, port };
}

/** One Echo call on `client` (any grpc.Client, e.g. one for `xds:///...`); resolves with the answering pod's name. */
export function callGrpcEcho(client: grpc.Client, message = "ping", deadlineMs = 5000): Promise<string> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      GRPC_ECHO_PATH,
      bytes.serialize,
      bytes.deserialize,
      message,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, value) => (err ? reject(err) : resolve(value ?? "")),
    ),
  );
}

/** Runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runGrpcEcho(env: NodeJS.ProcessEnv): Promise<number> {
  const name = env.POD_NAME ?? env.HOSTNAME ?? "unknown";
  const port = Number(env.GRPC_ECHO_PORT ?? GRPC_ECHO_DEFAULT_PORT);
  const { server, port: bound } = await startGrpcEcho({ name, port });
  process.stdout.write(`grpc-echo ${name} listening on port ${bound}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  return 0;
}
