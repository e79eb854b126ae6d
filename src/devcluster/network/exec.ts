/** Running the machine's network tools (`ip`, `iptables`) and reading their results. */
import { spawn } from "node:child_process";
import { IsthmusError } from "../../base/index.js";

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Thrown when a network tool fails where it must not; the message holds the command and its stderr. */
export class NetworkCommandError extends IsthmusError {
  constructor(message: string) {
    super("ISTHMUS_ERR_NETWORK_COMMAND", message);
  }
}

/** Runs `cmd args`, feeding `input` on stdin; resolves with the exit code and output (never rejects on exit code). */
export function tryRun(cmd: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    child.once("error", reject);
    child.once("close", (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    if (child.stdin) {
      // A tool that exits without reading its input must not crash us with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(input);
    }
  });
}

/** Like tryRun, but a non-zero exit rejects with NetworkCommandError. */
export async function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  const r = await tryRun(cmd, args, input);
  if (r.code !== 0) {
    const what = input ? `${cmd} ${args.join(" ")} <<${input.trim().replace(/\n/g, "; ")}` : `${cmd} ${args.join(" ")}`;
    throw new NetworkCommandError(`\`${what}\` failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Names of network namespaces (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const out = await run("ip", ["netns", "list"]);
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "");
}

/** Names of links in the host namespace. */
export async function listLinks(netns?: string): Promise<string[]> {
  const out = await run("ip", [...(netns ? ["-n", netns] : []), "-o", "link", "show"]);
  const names: string[] = [];
  for (const line of out.split("\n")) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

/** IPv4 addresses (without prefix) on a host link; [] when the link does not exist. */
export async function linkAddresses(link: string): Promise<string[]> {
  const r = await tryRun("ip", ["-o", "-4", "addr", "show", "dev", link]);
  if (r.code !== 0) return [];
  const out: string[] = [];
  for (const m of r.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/g)) if (m[1]) out.push(m[1]);
  return out;
}

/** Pids of processes in a network namespace (`ip netns pids`). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await tryRun("ip", ["netns", "pids", netns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}
