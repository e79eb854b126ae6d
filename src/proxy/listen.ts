/** Binding a capture listener: resolves with the bound port, rejects on EADDRINUSE and the like. */
import type net from "node:net";

export function listenOn(server: net.Server, port: number, host = "0.0.0.0"): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
