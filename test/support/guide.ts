/**
 * Reads the guide's markdown (`{{< text bash >}}` blocks) into the commands it tells a user to
 * run, and the output it shows after some of them, so that tests run the guide itself.
 */

export interface GuideCommand {
  /** The command as written, continuation lines and heredocs included. */
  readonly command: string;
  /** Output lines the guide shows after it, if any. */
  readonly expectedOutput: readonly string[];
}

/** Every shell command of every bash block, in order. */
export function guideCommands(markdown: string): GuideCommand[] {
  const blocks = [...markdown.matchAll(/\{\{< text bash >\}\}\n([\s\S]*?)\{\{< \/text >\}\}/g)].map((m) => m[1] ?? "");
  const out: { lines: string[]; expectedOutput: string[] }[] = [];
  for (const block of blocks) {
    let heredoc: string | undefined;
    let continued = false;
    for (const line of block.split("\n")) {
      const current = out.at(-1);
      if (heredoc !== undefined || continued) {
        current?.lines.push(line);
        if (heredoc !== undefined && line.trim() === heredoc) heredoc = undefined;
        else if (heredoc === undefined) continued = line.endsWith("\\");
        continue;
      }
      if (line.startsWith("$ ")) {
        out.push({ lines: [line.slice(2)], expectedOutput: [] });
        continued = line.endsWith("\\");
        heredoc = /<<-?\s*'?(\w+)'?/.exec(line)?.[1];
        continue;
      }
      if (line.trim() !== "") current?.expectedOutput.push(line);
    }
  }
  return out.map((e) => ({ command: e.lines.join("\n"), expectedOutput: e.expectedOutput }));
}

/** The guide's commands with `istioctl` replaced by `isthmus` and `@samples/...@` by a local path. */
export function adaptCommand(command: string, samplesDir: string): string {
  return command
    .replace(/\bistioctl\b/g, "isthmus")
    .replace(/@samples\/helloworld\/helloworld\.yaml@/g, `${samplesDir}/helloworld.yaml`)
    .replace(/@samples\/sleep\/sleep\.yaml@/g, `${samplesDir}/sleep.yaml`);
}
