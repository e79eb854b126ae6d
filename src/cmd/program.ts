/** `isthmus program <name> [args]`: runs a built-in workload program (what local clusters' images run). */
import { programs } from "../programs/index.js";

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const program = name === undefined ? undefined : programs[name];
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
