/** The benchmark's upstream: answers every request with 1 KiB, keep-alive. Prints "ready <port>". */
import http from "node:http";

const body = Buffer.alloc(1024, "x");
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2]), "127.0.0.1", () => process.stdout.write(`ready ${process.argv[2]}\n`));
