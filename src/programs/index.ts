/**
 * programs: built-in workload programs that local clusters run for known images
 * (`isthmus program <name>`). Imports only src/base. Each entry returns an exit code.
 */
import { runHelloworld } from "./helloworld.js";

export { createHelloworld, type HelloworldOptions, runHelloworld } from "./helloworld.js";

/** Program name → main. Extend this table to add a program (and the node's image catalogue). */
export const programs: Record<
  string,
  { summary: string; run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> }
> = {
  helloworld: { summary: "the helloworld sample server (port 5000)", run: (_argv, env) => runHelloworld(env) },
};
