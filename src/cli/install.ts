/**
 * `isthmus install`, `uninstall`, `manifest generate` and `verify-install`: istioctl's
 * install family. Validation happens before any call to the cluster; apply is idempotent;
 * readiness is awaited with a deadline and, when it passes, a diagnosis of why.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { Command, Option } from "commander";
import YAML from "yaml";
import { errorMessage, parseDuration, sleep } from "../base/index.js";
import { httpStatusOf, type KubeObjectLike } from "../ca/kube-api.js";
import { parseInjectValues } from "../inject/index.js";
import { type ApplyOutcome, applyObject, contains, deleteObject, displayName, type ObjectApi, refOf } from "./apply.js";
import { cliVersion, collect, openCluster, runCommand } from "./common.js";
import { type Component, ISTIO_NAMESPACE, kindRefs, renderManifests } from "./manifests.js";
import { DEFAULT_HUB, type InstallValues, type ParseResult, parseIstioOperator } from "./operator.js";

/** Reads the IstioOperator file (or none) and the --set flags; reasons for every problem. */
export function readOperator(file: string | undefined, sets: readonly string[]): ParseResult {
  let text = "";
  if (file !== undefined) {
    try {
      text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
    } catch (err) {
      return { ok: false, reasons: [`cannot read ${file}: ${errorMessage(err)}; pass -f with an IstioOperator file`] };
    }
  }
  return parseIstioOperator(text, { file: file ?? "(no file)", sets, defaultTag: cliVersion() });
}

/** The manifests as one YAML stream (what `manifest generate` prints). Pure. */
export function manifestsYaml(components: readonly Component[]): string {
  return components
    .flatMap((c) => c.objects)
    .map((o) => YAML.stringify(o, { lineWidth: 0, aliasDuplicateObjects: false }))
    .join("---\n");
}

type PodLike = KubeObjectLike & {
  spec?: { containers?: { name: string; image?: string }[] };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: {
      name: string;
      ready?: boolean;
      restartCount?: number;
      state?: Record<string, { reason?: string; message?: string; exitCode?: number } | undefined>;
    }[];
  };
};

const podsRef = { group: "", version: "v1", resource: "pods" };
const eventsRef = { group: "", version: "v1", resource: "events" };

function isReady(pod: PodLike): boolean {
  return (
    pod.metadata.deletionTimestamp === undefined &&
    (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

/** Reads a container's last log lines; undefined when logs cannot be had. */
export type LogReader = (namespace: string, pod: string, container: string) => Promise<string | undefined>;

/** A LogReader through the API server (pods/log), with client-node. */
export function apiLogReader(kc: KubeConfig): LogReader {
  const core = kc.makeApiClient(CoreV1Api);
  return async (namespace, name, container) => {
    try {
      return await core.readNamespacedPodLog({ name, namespace, container, tailLines: 10 });
    } catch {
      return undefined;
    }
  };
}

/**
 * Why istiod is not Ready: each pod's phase, conditions and container states, the events about
 * it, and its last log lines. Never throws; what cannot be read is said so.
 */
export async function diagnoseIstiod(api: ObjectApi, logs?: LogReader): Promise<string[]> {
  const lines: string[] = [];
  let pods: PodLike[] = [];
  try {
    pods = (await api.list(podsRef, { namespace: ISTIO_NAMESPACE, labelSelector: "app=istiod" })).items as PodLike[];
  } catch (err) {
    return [`could not list istiod's pods: ${errorMessage(err)}`];
  }
  if (pods.length === 0) {
    lines.push(
      "no istiod pod exists: the Deployment's ReplicaSet made none (is the cluster's controller manager running?)",
    );
    lines.push(`  check: kubectl get deployment,replicaset -n ${ISTIO_NAMESPACE}`);
  }
  let events: KubeObjectLike[] = [];
  try {
    events = (await api.list(eventsRef, { namespace: ISTIO_NAMESPACE })).items;
  } catch {
    // events are a help, not a must
  }
  for (const pod of pods) {
    const name = pod.metadata.name ?? "?";
    lines.push(`pod ${name}: phase ${pod.status?.phase ?? "unknown"}`);
    for (const c of pod.status?.conditions ?? []) {
      if (c.status !== "True")
        lines.push(
          `  condition ${c.type}=False${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ""})` : ""}`,
        );
    }
    for (const cs of pod.status?.containerStatuses ?? []) {
      const [state, detail] = Object.entries(cs.state ?? {})[0] ?? ["unknown", undefined];
      const why = detail?.reason ? ` ${detail.reason}` : "";
      const msg = detail?.message ? `: ${detail.message}` : "";
      const code = detail?.exitCode !== undefined ? ` exit code ${detail.exitCode}` : "";
      lines.push(
        `  container ${cs.name}: ${state}${why}${code}${msg}, ready=${cs.ready === true}, restarts=${cs.restartCount ?? 0}`,
      );
    }
    const about = events.filter((e) => (e.involvedObject as { name?: string } | undefined)?.name === name).slice(-5);
    for (const e of about)
      lines.push(`  event ${String(e.type ?? "")} ${String(e.reason ?? "")}: ${String(e.message ?? "")}`);
    if (logs !== undefined) {
      const text = await logs(ISTIO_NAMESPACE, name, "discovery");
      if (text === undefined || text.trim() === "") lines.push("  (no log lines)");
      else {
        lines.push("  last log lines:");
        for (const l of text.trimEnd().split("\n").slice(-10)) lines.push(`    ${l}`);
      }
    }
  }
  return lines;
}

export interface InstallOptions {
  readonly api: ObjectApi;
  readonly values: InstallValues;
  /** One line of progress (stdout). */
  readonly print: (line: string) => void;
  /** 0 skips the wait (used when the caller waits itself). */
  readonly readinessTimeoutMs: number;
  readonly logs?: LogReader;
  readonly dryRun?: boolean;
}

export interface InstallResult {
  readonly ok: boolean;
  /** `Kind/ns/name` → what apply did. */
  readonly outcomes: ReadonlyMap<string, ApplyOutcome>;
}

/** Waits until an istiod pod running `image` is Ready, or the deadline passes. */
async function waitForIstiod(api: ObjectApi, image: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const pods = (await api.list(podsRef, { namespace: ISTIO_NAMESPACE, labelSelector: "app=istiod" }))
        .items as PodLike[];
      if (pods.some((p) => isReady(p) && (p.spec?.containers ?? []).some((c) => c.image === image))) return true;
    } catch {
      // the API server may blink; keep waiting until the deadline
    }
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
}

/** Applies the rendered manifests component by component, printing istioctl-style progress. */
export async function install(opts: InstallOptions): Promise<InstallResult> {
  const outcomes = new Map<string, ApplyOutcome>();
  const icons: Record<Component["name"], string> = { "Istio core": "⛵️", Istiod: "🧠" };
  for (const component of renderManifests(opts.values)) {
    for (const obj of component.objects) {
      if (opts.dryRun) {
        opts.print(`${displayName(obj)} (dry run)`);
        continue;
      }
      outcomes.set(displayName(obj), await applyObject(opts.api, obj));
    }
    if (component.name === "Istiod" && !opts.dryRun && opts.readinessTimeoutMs > 0) {
      opts.print(`- Processing resources for Istiod. Waiting for Deployment/${ISTIO_NAMESPACE}/istiod`);
      const image = `${opts.values.hub}/pilot:${opts.values.tag}`;
      if (!(await waitForIstiod(opts.api, image, opts.readinessTimeoutMs))) {
        opts.print(`✘ Istiod was not Ready within ${Math.round(opts.readinessTimeoutMs / 1000)}s:`);
        for (const l of await diagnoseIstiod(opts.api, opts.logs)) opts.print(`  ${l}`);
        opts.print(`  Re-run the same command once fixed: install changes only what differs.`);
        return { ok: false, outcomes };
      }
    }
    opts.print(`✔ ${component.name} installed ${icons[component.name]}`);
  }
  opts.print("✔ Installation complete");
  return { ok: true, outcomes };
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function kubeOptions(cmd: Command): Command {
  return cmd
    .option("--context <name>", "the kubeconfig context to use")
    .option("-c, --kubeconfig <file>", "the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)");
}

function reportInvalid(name: string, reasons: readonly string[]): number {
  process.stderr.write(
    `isthmus ${name}: the IstioOperator is not valid (${reasons.length} problem${reasons.length === 1 ? "" : "s"}); nothing was changed:\n${reasons.map((r) => `  - ${r}`).join("\n")}\n`,
  );
  return 1;
}

function command(name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
}

/** `isthmus install --context CTX -f FILE [--set path=value ...] [-y]`. */
export async function main(argv: string[]): Promise<number> {
  return runCommand("install", async () => {
    const cmd = kubeOptions(command("install"))
      .description("install the control plane from an IstioOperator file")
      .option("-f, --filename <file>", "IstioOperator file (- for stdin)")
      .option("-s, --set <path=value>", "override a field of spec, e.g. values.global.network=network1", collect, [])
      .option("-y, --skip-confirmation", "do not ask before installing")
      .option("--dry-run", "print what would be applied; change nothing")
      .option("--manifests", "print the rendered manifests and exit (like `manifest generate`)")
      .addOption(new Option("--readiness-timeout <duration>", "how long to wait for istiod to be Ready").default("5m"));
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<{
      filename?: string;
      set: string[];
      skipConfirmation?: boolean;
      dryRun?: boolean;
      manifests?: boolean;
      readinessTimeout: string;
      context?: string;
      kubeconfig?: string;
    }>();
    let timeoutMs: number;
    try {
      timeoutMs = parseDuration(o.readinessTimeout);
    } catch {
      process.stderr.write(
        `isthmus install: --readiness-timeout ${JSON.stringify(o.readinessTimeout)}: expected a duration such as 300s or 5m\n`,
      );
      return 2;
    }
    const parsed = readOperator(o.filename, o.set);
    if (!parsed.ok) return reportInvalid("install", parsed.reasons);
    for (const w of parsed.warnings) process.stderr.write(`warning: ${w}\n`);
    const values = parsed.value;
    if (o.manifests) {
      process.stdout.write(manifestsYaml(renderManifests(values)));
      return 0;
    }
    const cluster = openCluster(o);
    if (!o.skipConfirmation && !o.dryRun && process.stdin.isTTY) {
      const ok = await confirm(
        `This will install the Isthmus ${values.tag} profile "${values.profile}" into the cluster "${cluster.context}". Proceed? (y/N) `,
      );
      if (!ok) {
        process.stdout.write("Cancelled.\n");
        return 1;
      }
    }
    const result = await install({
      api: cluster.api,
      values,
      print: (l) => process.stdout.write(`${l}\n`),
      readinessTimeoutMs: timeoutMs,
      logs: apiLogReader(cluster.kc),
      dryRun: o.dryRun,
    });
    return result.ok ? 0 : 1;
  });
}

/** `isthmus manifest generate -f FILE [--set ...]`: prints what install would apply. */
export async function manifestMain(argv: string[]): Promise<number> {
  return runCommand("manifest", async () => {
    const [sub, ...rest] = argv;
    if (sub !== "generate") {
      process.stderr.write(
        `isthmus manifest: unknown subcommand ${JSON.stringify(sub ?? "")}; use: isthmus manifest generate -f FILE\n`,
      );
      return 2;
    }
    const cmd = command("manifest generate")
      .option("-f, --filename <file>", "IstioOperator file (- for stdin)")
      .option("-s, --set <path=value>", "override a field of spec", collect, []);
    cmd.parse(rest, { from: "user" });
    const o = cmd.opts<{ filename?: string; set: string[] }>();
    const parsed = readOperator(o.filename, o.set);
    if (!parsed.ok) return reportInvalid("manifest generate", parsed.reasons);
    process.stdout.write(manifestsYaml(renderManifests(parsed.value)));
    return 0;
  });
}

/** The values an installation was made with, read back from ConfigMap `istio-sidecar-injector`. */
export async function installedValues(api: ObjectApi): Promise<InstallValues | undefined> {
  let cm: KubeObjectLike;
  try {
    cm = await api.get(kindRefs.ConfigMap ?? podsRef, ISTIO_NAMESPACE, "istio-sidecar-injector");
  } catch (err) {
    if (httpStatusOf(err) === 404) return undefined;
    throw err;
  }
  const raw = (cm.data as Record<string, string> | undefined)?.values ?? "";
  const parsed = parseInjectValues(raw);
  if (!parsed.ok) return undefined;
  const v = parsed.value;
  let meshConfig: Record<string, unknown> = {};
  try {
    const mesh = await api.get(kindRefs.ConfigMap ?? podsRef, ISTIO_NAMESPACE, "istio");
    const parsedMesh: unknown = YAML.parse((mesh.data as Record<string, string> | undefined)?.mesh ?? "{}");
    if (typeof parsedMesh === "object" && parsedMesh !== null) {
      const {
        enablePrometheusMerge: _a,
        rootNamespace: _b,
        defaultConfig: _c,
        ...given
      } = parsedMesh as Record<string, unknown>;
      meshConfig = given;
    }
  } catch {
    // the mesh config only refines the comparison
  }
  return {
    profile: "default",
    hub: v.hub || DEFAULT_HUB,
    tag: v.tag,
    revision: v.revision || "default",
    meshId: v.meshId,
    clusterId: v.clusterId,
    network: v.network,
    trustDomain: v.trustDomain,
    meshConfig,
    pilotEnv: {},
  };
}

/**
 * Checks that every object of an installation exists and holds what install wrote, and that
 * istiod is Ready. Returns one line per object and the problems found.
 */
export async function verifyInstall(
  api: ObjectApi,
  values: InstallValues,
): Promise<{ lines: string[]; problems: string[] }> {
  const lines: string[] = [];
  const problems: string[] = [];
  for (const obj of renderManifests(values).flatMap((c) => c.objects)) {
    const ref = refOf(obj);
    const desc = `${obj.kind}: ${obj.metadata.name}${ref.namespaced ? `.${obj.metadata.namespace}` : ""}`;
    try {
      const have = await api.get(ref, ref.namespaced ? obj.metadata.namespace : undefined, obj.metadata.name ?? "");
      const { metadata: _m, ...want } = obj;
      const { metadata: _h, ...got } = have;
      // The Deployment's env differs by `values.pilot.env`, which the cluster does not record.
      if (obj.kind !== "Deployment" && !contains(got, want)) {
        problems.push(`${desc} differs from what install writes; re-run isthmus install`);
        continue;
      }
      lines.push(`✔ ${desc} checked successfully`);
    } catch (err) {
      problems.push(
        httpStatusOf(err) === 404 ? `${desc} is missing; re-run isthmus install` : `${desc}: ${errorMessage(err)}`,
      );
    }
  }
  const pods = (await api.list(podsRef, { namespace: ISTIO_NAMESPACE, labelSelector: "app=istiod" }))
    .items as PodLike[];
  if (!pods.some(isReady)) problems.push(`no istiod pod is Ready in ${ISTIO_NAMESPACE}`);
  else
    lines.push(
      `✔ istiod is Ready (${pods
        .filter(isReady)
        .map((p) => p.metadata.name)
        .join(", ")})`,
    );
  return { lines, problems };
}

/** `isthmus verify-install [-f FILE]`. */
export async function verifyInstallMain(argv: string[]): Promise<number> {
  return runCommand("verify-install", async () => {
    const cmd = kubeOptions(command("verify-install"))
      .option("-f, --filename <file>", "the IstioOperator the installation was made from")
      .option("-s, --set <path=value>", "override a field of spec", collect, []);
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<{ filename?: string; set: string[]; context?: string; kubeconfig?: string }>();
    const cluster = openCluster(o);
    let values: InstallValues | undefined;
    if (o.filename !== undefined) {
      const parsed = readOperator(o.filename, o.set);
      if (!parsed.ok) return reportInvalid("verify-install", parsed.reasons);
      values = parsed.value;
    } else {
      values = await installedValues(cluster.api);
    }
    if (values === undefined) {
      process.stderr.write(
        `isthmus verify-install: no installation found in context "${cluster.context}" (ConfigMap ${ISTIO_NAMESPACE}/istio-sidecar-injector is missing); run isthmus install first\n`,
      );
      return 1;
    }
    const { lines, problems } = await verifyInstall(cluster.api, values);
    for (const l of lines) process.stdout.write(`${l}\n`);
    if (problems.length > 0) {
      process.stdout.write(
        `✘ ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${problems.map((p) => `  - ${p}`).join("\n")}\n`,
      );
      return 1;
    }
    process.stdout.write(`✔ Isthmus is installed and verified successfully\n`);
    return 0;
  });
}

/**
 * Removes the control plane: every object install writes except the namespace; with `purge`
 * also istio-ca-secret and the istio-ca-root-cert ConfigMaps of every namespace.
 */
export async function uninstall(
  api: ObjectApi,
  values: InstallValues,
  purge: boolean,
  print: (l: string) => void,
): Promise<void> {
  const objects = renderManifests(values)
    .flatMap((c) => c.objects)
    .filter((o) => o.kind !== "Namespace")
    .reverse();
  for (const obj of objects) {
    if (await deleteObject(api, obj)) print(`✔ Removed ${displayName(obj)}.`);
  }
  if (!purge) return;
  const secret: KubeObjectLike = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "istio-ca-secret", namespace: ISTIO_NAMESPACE },
  };
  if (await deleteObject(api, secret)) print(`✔ Removed ${displayName(secret)}.`);
  const cms = await api.list(kindRefs.ConfigMap ?? podsRef, { fieldSelector: "metadata.name=istio-ca-root-cert" });
  for (const cm of cms.items) {
    if (cm.metadata.name !== "istio-ca-root-cert") continue;
    const obj = { ...cm, kind: "ConfigMap" };
    if (await deleteObject(api, obj)) print(`✔ Removed ${displayName(obj)}.`);
  }
}

/** `isthmus uninstall --purge` (or `-f FILE`). */
export async function uninstallMain(argv: string[]): Promise<number> {
  return runCommand("uninstall", async () => {
    const cmd = kubeOptions(command("uninstall"))
      .option("--purge", "remove everything install made, and the CA's root secret and published roots")
      .option("-f, --filename <file>", "the IstioOperator the installation was made from")
      .option("-y, --skip-confirmation", "do not ask before removing");
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<{
      purge?: boolean;
      filename?: string;
      skipConfirmation?: boolean;
      context?: string;
      kubeconfig?: string;
    }>();
    if (!o.purge && o.filename === undefined) {
      process.stderr.write(
        "isthmus uninstall: say what to remove: --purge (everything) or -f FILE (that installation)\n",
      );
      return 2;
    }
    const cluster = openCluster(o);
    const parsed = o.filename !== undefined ? readOperator(o.filename, []) : undefined;
    if (parsed !== undefined && !parsed.ok) return reportInvalid("uninstall", parsed.reasons);
    const values = parsed?.ok ? parsed.value : ((await installedValues(cluster.api)) ?? readOperatorDefaults());
    if (!o.skipConfirmation && process.stdin.isTTY) {
      if (
        !(await confirm(`All Isthmus resources will be removed from the cluster "${cluster.context}". Proceed? (y/N) `))
      ) {
        process.stdout.write("Cancelled.\n");
        return 1;
      }
    }
    await uninstall(cluster.api, values, o.purge === true, (l) => process.stdout.write(`${l}\n`));
    process.stdout.write("✔ Uninstall complete\n");
    return 0;
  });
}

function readOperatorDefaults(): InstallValues {
  const parsed = parseIstioOperator("", { file: "(defaults)", defaultTag: cliVersion() });
  if (!parsed.ok) throw new Error(parsed.reasons.join("; "));
  return parsed.value;
}
