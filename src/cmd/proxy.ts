/**
 * `isthmus proxy init ...` (istio-init: traffic capture in the pod's network namespace) and
 * `isthmus proxy sidecar ...` (the sidecar: pilot-agent and Envoy in one process).
 */
import { applyCaptureRules, buildCaptureRules, parseCaptureArgs } from "../proxy/capture/index.js";

async function init(argv: string[]): Promise<number> {
  const parsed = parseCaptureArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`proxy init: ${parsed.reasons.join("; ")}\n`);
    return 64;
  }
  const rules = buildCaptureRules(parsed.value);
  process.stdout.write(rules);
  try {
    await applyCaptureRules(rules);
  } catch (err) {
    process.stderr.write(`proxy init: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write("traffic capture installed\n");
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "init") return init(rest);
  if (sub === "sidecar") {
    // Loaded only here so the capture step (run in every pod's init container) stays light.
    const mod = await import("./sidecar.js");
    return mod.main(rest);
  }
  process.stderr.write("usage: isthmus proxy init [istio-iptables flags] | isthmus proxy sidecar [flags]\n");
  return 64;
}
