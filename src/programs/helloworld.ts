/**
 * The helloworld sample's server, as local clusters run it for the helloworld images: port 5000
 * on all addresses, `GET /hello` → `Hello version: <SERVICE_VERSION>, instance: <HOSTNAME>\n`,
 * `GET /health` → `Helloworld is healthy`. The original burns CPU per request; this one does a
 * token amount of work so that benchmarks measure the mesh, not the sample.
 */
import { createServer, type Server } from "node:http";

export interface HelloworldOptions {
  readonly version: string;
  readonly instance: string;
  readonly port?: number;
  readonly host?: string;
}

/** Creates the server (not listening). */
export function createHelloworld(opts: HelloworldOptions): Server {
  const body = `Hello version: ${opts.version}, instance: ${opts.instance}\n`;
  return createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/hello") {
      let x = 0;
      for (let i = 1; i <= 1000; i++) x += Math.sqrt(i);
      void x;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(body);
      return;
    }
    if (req.method === "GET" && path === "/health") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("Helloworld is healthy");
      return;
    }
    res.writeHead(404, { "content-type": "text/html; charset=utf-8" });
    res.end("<h1>Not Found</h1>\n");
  });
}

/** Runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runHelloworld(env: NodeJS.ProcessEnv): Promise<number> {
  const server = createHelloworld({
    version: env.SERVICE_VERSION ?? "v1",
    instance: env.HOSTNAME ?? "unknown",
    port: 5000,
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(5000, () => resolve());
  });
  process.stdout.write(`helloworld ${env.SERVICE_VERSION ?? "v1"} listening on port 5000\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  server.close();
  server.closeAllConnections();
  return 0;
}
