/**
 * programs: built-in workload programs that local clusters run for known images
 * (`isthmus program <name>`). Imports only src/base. Each entry returns an exit code.
 */

export { createHelloworld, type HelloworldOptions, runHelloworld } from "./helloworld.js";

/**
 * Program name → main, loaded on use (a pod running helloworld should not load gRPC). Extend
 * this table to add a program, and the node's image catalogue to map an image to it.
 */
export const programs: Record<
  string,
  { summary: string; run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> }
> = {
  helloworld: {
    summary: "the helloworld sample server (port 5000)",
    run: async (_argv, env) => (await import("./helloworld.js")).runHelloworld(env),
  },
  "grpc-echo": {
    summary: "a gRPC echo server answering with the pod's name (GRPC_ECHO_PORT, default 7070)",
    run: async (_argv, env) => (await import("./grpc-echo.js")).runGrpcEcho(env),
  },
};
