/** `isthmus program <name> [args]`: runs a built-in workload program (what local clusters' images run). */
import { programs } from "../programs/index.js";

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const program = name === undefined ? undefined : programs[name];
  // A program is a server that runs until signalled: asking for help must not start one
  // (it would bind the program's port on the host).
  if (program && (rest.includes("--help") || rest.includes("-h"))) {
    process.stdout.write(`isthmus program ${name}: ${program.summary}\n`);
    return 0;
  }
  if (!program) {
    const list = Object.entries(programs)
      .map(([n, p]) => `  ${n}  ${p.summary}`)
      .join("\n");
    process.stderr.write(
      `isthmus program: ${name === undefined ? "no program named" : `unknown program "${name}"`}; built-in programs:\n${list}\n`,
    );
    return 2;
  }
  return program.run(rest, process.env);
}
