/**
 * Starting a container's process: `ip netns exec <ns>` (the pod's network and resolv.conf, a
 * private mount namespace), bind mounts of the volumes at the spec's paths, then `setpriv` for
 * the user, group and capabilities, then the program. Output goes straight to the log file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import type { SecurityContext } from "./pod-types.js";

/** Quotes one word for sh. */
export function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

export interface LaunchSpec {
  readonly netns: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly mounts: readonly Mount[];
  readonly workingDir?: string;
  readonly security?: SecurityContext;
  /** The pod's hostname, set in the container's own UTS namespace (Kubernetes truncates it to 63 characters). */
  readonly hostname?: string;
  /** stdout and stderr are appended here. */
  readonly logFile: string;
}

/** The `setpriv` prefix for a security context; empty when the process stays root without changes. */
export function privilegeArgs(sc: SecurityContext | undefined): string[] {
  const uid = sc?.runAsUser;
  const gid = sc?.runAsGroup ?? uid;
  if (uid === undefined || uid === 0) return [];
  const args = ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups"];
  const caps = (sc?.capabilities?.add ?? []).map((c) => `+${c.toLowerCase().replace(/^cap_/, "")}`);
  if (caps.length > 0) args.push(`--inh-caps=${caps.join(",")}`, `--ambient-caps=${caps.join(",")}`);
  args.push("--");
  return args;
}

/** The shell script run inside the pod's namespaces before exec'ing the program. */
export function launchScript(spec: Omit<LaunchSpec, "logFile" | "netns" | "env">): string {
  const hostname = spec.hostname ? [`hostname ${shQuote(spec.hostname.slice(0, 63).replace(/[-.]+$/, ""))}`] : [];
  // Private: mounts made later on the host (every new pod's /run/netns entry) must not be copied
  // into every running container's mount namespace, which makes pod start-up quadratic.
  const lines = ["set -e", "mount --make-rprivate /", ...hostname];
  for (const m of spec.mounts) {
    const s = shQuote(m.source);
    const t = shQuote(m.target);
    // A file (subPath of a file) needs a file to mount over; a folder needs a folder.
    lines.push(`if [ -d ${s} ]; then mkdir -p ${t}; else mkdir -p "$(dirname ${t})"; [ -e ${t} ] || : > ${t}; fi`);
    lines.push(`mount --bind ${s} ${t}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${t}`);
  }
  // Without a workingDir a container starts in "/" (an image's usual WORKDIR), never in the daemon's
  // folder, which a non-root container user cannot enter (its child processes then fail with EACCES).
  if (spec.workingDir) lines.push(`mkdir -p ${shQuote(spec.workingDir)} && cd ${shQuote(spec.workingDir)}`);
  else lines.push("cd /");
  lines.push(`exec ${[...privilegeArgs(spec.security), ...spec.argv].map(shQuote).join(" ")}`);
  return lines.join("\n");
}

/** Starts the process in its own process group (so the whole tree can be signalled). */
export function launch(spec: LaunchSpec): ChildProcess {
  const fd = openSync(spec.logFile, "a");
  try {
    const uts = spec.hostname ? ["unshare", "--uts"] : [];
    return spawn("ip", ["netns", "exec", spec.netns, ...uts, "sh", "-c", launchScript(spec)], {
      env: { ...spec.env },
      stdio: ["ignore", fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
}

/** Sends `signal` to the process group of `pid` (and the process itself if it left the group). */
export function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
    } catch {
      // already gone
    }
  }
}

/** True when `/proc/<pid>` exists. */
export const processExists = (pid: number): boolean => existsSync(`/proc/${pid}`);
