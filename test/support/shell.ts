/**
 * Running commands the way a user types them, for end-to-end scenarios: bash with the
 * checkout's `isthmus` first on PATH and a private ISTHMUS_HOME, KUBECONFIG and HOME, so a
 * test never touches the machine's own clusters or kubeconfig.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export const repoRoot = join(import.meta.dirname, "..", "..");
export const sharedDir = join(repoRoot, "..", "shared");

export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Sandbox {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Runs one command line in the sandbox's folder; never rejects (look at `code`). */
  sh(command: string, opts?: { input?: string; timeoutMs?: number }): Promise<Ran>;
  /** Deletes the given local clusters (ignoring errors) and the folder. */
  cleanup(clusters: readonly string[]): Promise<void>;
}

export function sandbox(name: string, extraEnv: Record<string, string> = {}): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), `isthmus-${name}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${join(repoRoot, "bin")}${delimiter}${process.env.PATH ?? ""}`,
    ISTHMUS_HOME: join(dir, "home"),
    KUBECONFIG: join(dir, "kubeconfig"),
    HOME: dir,
    ...extraEnv,
  };
  const sh = (command: string, opts: { input?: string; timeoutMs?: number } = {}): Promise<Ran> =>
    new Promise((resolve) => {
      const child = spawn("bash", ["-o", "pipefail", "-c", command], {
        cwd: dir,
        env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 300_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 137, stdout, stderr });
      });
      child.stdin.end(opts.input ?? "");
    });
  return {
    dir,
    env,
    sh,
    async cleanup(clusters) {
      for (const c of clusters) await sh(`isthmus cluster delete ${c}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Network namespaces and links on the machine whose names contain `tag` (what a cluster made). */
export async function leftovers(sb: Sandbox, tags: readonly string[]): Promise<string[]> {
  if (tags.length === 0) return [];
  const r = await sb.sh("ip netns list; ip -o link show");
  return r.stdout.split("\n").filter((l) => tags.some((t) => l.includes(t)));
}

/** Polls `command` until `done(stdout)`; resolves with the last result either way. */
export async function pollUntil(
  sb: Sandbox,
  command: string,
  done: (out: string) => boolean,
  timeoutMs: number,
): Promise<Ran> {
  const deadline = Date.now() + timeoutMs;
  let last = await sb.sh(command);
  while (!(last.code === 0 && done(last.stdout)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    last = await sb.sh(command);
  }
  return last;
}
