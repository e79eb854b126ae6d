/**
 * Reading an IstioOperator (`install.istio.io/v1alpha1`) and `--set` overrides into the values
 * install renders from. Pure. Every problem is collected before anything is returned, each with
 * its path, what was found and what to write instead, so a user fixes the file in one pass.
 */
import YAML from "yaml";

/** Where the images come from when neither `spec.hub` nor `values.global.hub` says. */
export const DEFAULT_HUB = "docker.io/isthmus";

/** Everything the rendered manifests depend on. */
export interface InstallValues {
  readonly profile: "default" | "minimal";
  readonly hub: string;
  readonly tag: string;
  readonly revision: string;
  /** `values.global.meshID`; "" when unset. */
  readonly meshId: string;
  /** `values.global.multiCluster.clusterName`; "Kubernetes" when unset, as in Istio. */
  readonly clusterId: string;
  /** `values.global.network`; "" when unset. */
  readonly network: string;
  readonly trustDomain: string;
  /** `spec.meshConfig` as given (trustDomain included), merged into ConfigMap `istio`. */
  readonly meshConfig: Readonly<Record<string, unknown>>;
  /** `values.pilot.env`: extra env for istiod. */
  readonly pilotEnv: Readonly<Record<string, string>>;
}

type Schema =
  | { readonly t: "string"; readonly hint?: string }
  | { readonly t: "bool" }
  | { readonly t: "int" }
  | { readonly t: "enum"; readonly values: readonly string[] }
  | { readonly t: "any" }
  | { readonly t: "list"; readonly of: Schema }
  | { readonly t: "map"; readonly of: Schema }
  | { readonly t: "object"; readonly fields: Readonly<Record<string, Schema>> };

const str = (hint?: string): Schema => (hint === undefined ? { t: "string" } : { t: "string", hint });
const obj = (fields: Record<string, Schema>): Schema => ({ t: "object", fields });
const any: Schema = { t: "any" };
const bool: Schema = { t: "bool" };

/** The fields Isthmus understands; anything else is reported as unknown, with the nearest known name. */
const schema: Schema = obj({
  apiVersion: str(),
  kind: str(),
  metadata: any,
  spec: obj({
    profile: { t: "enum", values: ["default", "minimal"] },
    hub: str("a registry such as docker.io/isthmus"),
    tag: str('a version such as "0.1.0"'),
    revision: str(),
    namespace: str(),
    meshConfig: obj({
      trustDomain: str("a domain such as cluster.local"),
      trustDomainAliases: { t: "list", of: str() },
      accessLogFile: str(),
      accessLogEncoding: { t: "enum", values: ["TEXT", "JSON"] },
      enableTracing: bool,
      enableAutoMtls: bool,
      defaultConfig: any,
      outboundTrafficPolicy: obj({ mode: { t: "enum", values: ["ALLOW_ANY", "REGISTRY_ONLY"] } }),
      discoverySelectors: any,
    }),
    values: obj({
      global: obj({
        meshID: str("a mesh name such as mesh1"),
        network: str("a network name such as network1"),
        multiCluster: obj({ clusterName: str("a cluster name such as cluster1"), enabled: bool }),
        hub: str("a registry such as docker.io/isthmus"),
        tag: str('a version such as "0.1.0"'),
        istioNamespace: str(),
        meshNetworks: any,
        logging: any,
        proxy: any,
      }),
      pilot: obj({
        env: { t: "map", of: str() },
        autoscaleEnabled: bool,
        replicaCount: { t: "int" },
        resources: any,
        image: str(),
      }),
    }),
    components: obj({
      base: obj({ enabled: bool }),
      pilot: obj({ enabled: bool, k8s: any }),
      cni: obj({ enabled: bool }),
      ingressGateways: { t: "list", of: any },
      egressGateways: { t: "list", of: any },
    }),
  }),
});

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return `the ${typeof v} ${String(v)}`;
}

function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d = Array.from({ length: x.length + 1 }, (_, i) => [i, ...Array<number>(y.length).fill(0)]);
  for (let j = 1; j <= y.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
    }
  }
  return (d[x.length] as number[])[y.length] ?? 0;
}

function check(value: unknown, s: Schema, path: string, problems: string[]): void {
  const leaf = path.split(".").at(-1) ?? path;
  switch (s.t) {
    case "any":
      return;
    case "string":
      if (typeof value !== "string") {
        const example = s.hint ? ` (${s.hint})` : "";
        const fix =
          typeof value === "number" || typeof value === "boolean"
            ? `; quote it: ${leaf}: "${String(value)}"`
            : `; write ${leaf}: <text>`;
        problems.push(`${path}: expected a string${example}, got ${describe(value)}${fix}`);
      }
      return;
    case "bool":
      if (typeof value !== "boolean") problems.push(`${path}: expected true or false, got ${describe(value)}`);
      return;
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value)) {
        problems.push(`${path}: expected a whole number, got ${describe(value)}`);
      }
      return;
    case "enum":
      if (typeof value !== "string" || !s.values.includes(value)) {
        problems.push(`${path}: expected one of ${s.values.join(", ")}, got ${describe(value)}`);
      }
      return;
    case "list":
      if (!Array.isArray(value)) {
        problems.push(`${path}: expected a list, got ${describe(value)}`);
        return;
      }
      value.forEach((v, i) => {
        check(v, s.of, `${path}[${i}]`, problems);
      });
      return;
    case "map":
      if (!isRecord(value)) {
        problems.push(`${path}: expected a map, got ${describe(value)}`);
        return;
      }
      for (const [k, v] of Object.entries(value)) check(v, s.of, `${path}.${k}`, problems);
      return;
    case "object": {
      if (value === null) return; // `meshConfig:` with nothing under it, as YAML allows
      if (!isRecord(value)) {
        problems.push(`${path}: expected a map of fields, got ${describe(value)}`);
        return;
      }
      const known = Object.keys(s.fields);
      for (const [k, v] of Object.entries(value)) {
        const sub = s.fields[k];
        if (sub !== undefined) {
          check(v, sub, path === "" ? k : `${path}.${k}`, problems);
          continue;
        }
        const best = known
          .map((n) => ({ n, d: distance(n, k) }))
          .sort((a, b) => a.d - b.d)
          .find((c) => c.d <= Math.max(2, Math.floor(k.length / 3)));
        const where = path === "" ? k : `${path}.${k}`;
        problems.push(
          `${where}: unknown field${best ? `; did you mean "${best.n}"?` : ""} (known here: ${known.join(", ")})`,
        );
      }
    }
  }
}

function dig(root: unknown, path: readonly string[]): unknown {
  let cur = root;
  for (const k of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function schemaAt(path: readonly string[]): Schema | undefined {
  let cur: Schema | undefined = schema;
  for (const k of ["spec", ...path]) {
    if (cur === undefined) return undefined;
    if (cur.t === "object") cur = cur.fields[k];
    else if (cur.t === "map") cur = cur.of;
    else if (cur.t === "any") return cur;
    else return undefined;
  }
  return cur;
}

/**
 * Applies one `--set path=value` (path relative to `spec`, as istioctl's: `values.global.meshID=mesh1`,
 * `profile=minimal`). The value is typed by the field it sets; a wrong path is a problem with a hint.
 */
function applySet(doc: Record<string, unknown>, expr: string, problems: string[]): void {
  const eq = expr.indexOf("=");
  if (eq <= 0) {
    problems.push(`--set ${expr}: expected path=value, e.g. --set values.global.network=network1`);
    return;
  }
  const path = expr.slice(0, eq).split(".");
  const raw = expr.slice(eq + 1);
  const s = schemaAt(path);
  let value: unknown = raw;
  if (s?.t === "bool") value = raw === "true" ? true : raw === "false" ? false : raw;
  else if (s?.t === "int") value = /^-?\d+$/.test(raw) ? Number(raw) : raw;
  else if (s === undefined || s.t === "any") {
    value = raw === "true" ? true : raw === "false" ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  if (!isRecord(doc.spec)) doc.spec = {};
  let cur = doc.spec as Record<string, unknown>;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (!isRecord(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path.at(-1) ?? ""] = value;
}

export interface ParseOptions {
  /** The file's name, for messages. */
  readonly file: string;
  /** `--set` expressions, applied after the file, in order. */
  readonly sets?: readonly string[];
  /** The tag when the file sets none: this CLI's own version. */
  readonly defaultTag: string;
}

export type ParseResult =
  | { readonly ok: true; readonly value: InstallValues; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly reasons: readonly string[] };

/** Reads an IstioOperator file's text (empty text means "no file": all defaults). */
export function parseIstioOperator(text: string, opts: ParseOptions): ParseResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  let doc: Record<string, unknown> = { apiVersion: "install.istio.io/v1alpha1", kind: "IstioOperator", spec: {} };
  if (text.trim() !== "") {
    const docs = YAML.parseAllDocuments(text, { version: "1.1", prettyErrors: true });
    // The first syntax error is the one to fix; the parser's later ones are usually its echoes.
    const first = docs.flatMap((d) => d.errors)[0];
    if (first !== undefined) {
      const what = (first.message.split("\n")[0] ?? "").replace(/:$/, "");
      return {
        ok: false,
        reasons: [
          `${opts.file}: not valid YAML: ${what}; fix the syntax (an IstioOperator starts with "apiVersion: install.istio.io/v1alpha1")`,
        ],
      };
    }
    let values: unknown[];
    try {
      values = docs.map((d) => d.toJS() as unknown).filter((v) => v !== null && v !== undefined);
    } catch (err) {
      // Well-formed YAML can still fail to resolve (an alias to an anchor that does not exist).
      return {
        ok: false,
        reasons: [
          `${opts.file}: not valid YAML: ${err instanceof Error ? err.message : String(err)}; fix the document`,
        ],
      };
    }
    if (values.length !== 1) {
      return {
        ok: false,
        reasons: [`${opts.file}: expected exactly one IstioOperator document, found ${values.length}`],
      };
    }
    const only = values[0];
    if (!isRecord(only)) {
      return {
        ok: false,
        reasons: [
          `${opts.file}: expected an IstioOperator (a map with apiVersion, kind and spec), got ${describe(only)}`,
        ],
      };
    }
    doc = only;
    if (doc.apiVersion !== "install.istio.io/v1alpha1") {
      problems.push(`apiVersion: expected install.istio.io/v1alpha1, got ${describe(doc.apiVersion)}`);
    }
    if (doc.kind !== "IstioOperator") problems.push(`kind: expected IstioOperator, got ${describe(doc.kind)}`);
  }
  for (const expr of opts.sets ?? []) applySet(doc, expr, problems);
  check(doc, schema, "", problems);

  const spec = isRecord(doc.spec) ? doc.spec : {};
  const get = (...p: string[]) => dig(spec, p);
  const s = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  const clusterId = s(get("values", "global", "multiCluster", "clusterName")) ?? "";
  if (clusterId !== "" && !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(clusterId)) {
    problems.push(
      `spec.values.global.multiCluster.clusterName: ${JSON.stringify(clusterId)} is not a valid cluster name; use letters, digits, "-", "_" or "." (e.g. cluster1)`,
    );
  }
  for (const gw of ["ingressGateways", "egressGateways"] as const) {
    const list = get("components", gw);
    if (Array.isArray(list) && list.some((g) => !isRecord(g) || g.enabled !== false)) {
      problems.push(`spec.components.${gw}: gateways are not supported by Isthmus; remove them or set enabled: false`);
    }
  }
  if (get("components", "cni", "enabled") === true) {
    problems.push("spec.components.cni.enabled: the Istio CNI is not supported by Isthmus; remove it");
  }
  if (get("components", "pilot", "enabled") === false) {
    problems.push("spec.components.pilot.enabled: false would install no control plane; remove it");
  }
  const revision = s(get("revision")) ?? "";
  if (revision !== "" && revision !== "default") {
    problems.push(`spec.revision: revisions are not supported yet (got ${JSON.stringify(revision)}); remove it`);
  }
  const ns = s(get("namespace")) ?? s(get("values", "global", "istioNamespace")) ?? "istio-system";
  if (ns !== "istio-system") {
    problems.push(`spec.namespace: only istio-system is supported (got ${JSON.stringify(ns)}); remove it`);
  }
  if (problems.length > 0) return { ok: false, reasons: problems };

  const meshConfig = isRecord(get("meshConfig")) ? (get("meshConfig") as Record<string, unknown>) : {};
  const env = get("values", "pilot", "env");
  return {
    ok: true,
    warnings,
    value: {
      profile: (s(get("profile")) as InstallValues["profile"] | undefined) ?? "default",
      hub: s(get("hub")) ?? s(get("values", "global", "hub")) ?? DEFAULT_HUB,
      tag: s(get("tag")) ?? s(get("values", "global", "tag")) ?? opts.defaultTag,
      revision: "default",
      meshId: s(get("values", "global", "meshID")) ?? "",
      clusterId: clusterId === "" ? "Kubernetes" : clusterId,
      network: s(get("values", "global", "network")) ?? "",
      trustDomain: s(meshConfig.trustDomain) ?? "cluster.local",
      meshConfig,
      pilotEnv: isRecord(env) ? (env as Record<string, string>) : {},
    },
  };
}
