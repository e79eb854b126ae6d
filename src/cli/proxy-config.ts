/**
 * `isthmus proxy-config endpoint|cluster|listener|route|secret <pod>.<namespace>`: what one
 * sidecar holds, read from its admin port, in istioctl's columns (`-o json` for the raw data;
 * `-o wide` adds the Kubernetes cluster of each endpoint).
 */
import { Command } from "commander";
import { openCluster, runCommand } from "./common.js";
import { table } from "./output.js";
import { podRef, sidecarAdmin } from "./proxy-views.js";

type Json = Record<string, unknown>;

interface ClusterStatus {
  name: string;
  /** outlierCheck is FAILED while the sidecar's outlier detection ejects the host (absent from older sidecars). */
  hosts: { address: string; health: string; clusterId: string; weight: number; outlierCheck?: string }[];
}

interface ConfigDump {
  certificate: { spiffeId: string; notAfter: string } | null;
  configs: { typeUrl: string; versionInfo: string; resources: Json[] }[];
}

const typeOf = (t: string) => t.slice(t.lastIndexOf(".") + 1);

function resources(dump: ConfigDump, kind: string): Json[] {
  return dump.configs.find((c) => typeOf(c.typeUrl) === kind)?.resources ?? [];
}

/** `outbound|5000|subset|host` → its parts (Istio's BuildSubsetKey). */
function clusterParts(name: string): { direction: string; port: string; subset: string; host: string } {
  const [direction = "", port = "", subset = "", host = ""] = name.split("|");
  return name.includes("|")
    ? { direction, port, subset, host }
    : { direction: "-", port: "-", subset: "-", host: name };
}

export function endpointRows(statuses: ClusterStatus[], wide: boolean): string[][] {
  return statuses
    .flatMap((c) =>
      c.hosts.map((h) => [h.address, h.health, h.outlierCheck ?? "OK", c.name, ...(wide ? [h.clusterId || "-"] : [])]),
    )
    .sort((a, b) => (a[3] ?? "").localeCompare(b[3] ?? "") || (a[0] ?? "").localeCompare(b[0] ?? ""));
}

export function clusterRows(dump: ConfigDump): string[][] {
  return resources(dump, "Cluster").map((c) => {
    const name = String(c.name);
    const p = clusterParts(name);
    return [p.host || "-", p.port || "-", p.subset || "-", p.direction, String(c.type ?? "EDS"), "-"];
  });
}

export function listenerRows(dump: ConfigDump): string[][] {
  const rows: string[][] = [];
  for (const l of resources(dump, "Listener")) {
    const sa = ((l.address as Json | undefined)?.socketAddress ?? {}) as Json;
    for (const chain of (l.filterChains as Json[] | undefined) ?? []) {
      const match = (chain.filterChainMatch ?? {}) as Json;
      const filters = (chain.filters as Json[] | undefined) ?? [];
      const tc = (filters.at(-1)?.typedConfig ?? {}) as Json;
      const rds = (tc.rds as Json | undefined)?.routeConfigName;
      const dest =
        rds !== undefined ? `Route: ${rds}` : tc.cluster !== undefined ? `Cluster: ${tc.cluster}` : "Inline Route";
      const what =
        match.destinationPort !== undefined
          ? `Port ${match.destinationPort}${match.transportProtocol ? ` (${match.transportProtocol})` : ""}`
          : "ALL";
      rows.push([String(sa.address ?? "-"), String(sa.portValue ?? "-"), what, dest]);
    }
  }
  return rows;
}

export function routeRows(dump: ConfigDump): string[][] {
  return resources(dump, "RouteConfiguration").flatMap((r) =>
    ((r.virtualHosts as Json[] | undefined) ?? []).map((vh) => {
      const domains = (vh.domains as string[] | undefined) ?? [];
      const shown = domains.length > 2 ? `${domains[0]} + ${domains.length - 1} more...` : domains.join(", ");
      const match = (((vh.routes as Json[] | undefined)?.[0]?.match ?? {}) as Json).prefix ?? "/*";
      return [String(r.name), String(vh.name), shown, `${match}*`.replace("/**", "/*"), "-"];
    }),
  );
}

export async function main(argv: string[]): Promise<number> {
  return runCommand("proxy-config", async () => {
    const cmd = new Command("proxy-config")
      .description("show what a sidecar holds: endpoint, cluster, listener, route or secret")
      .argument("<what>", "endpoint | cluster | listener | route | secret")
      .argument("<pod>", "<pod name>.<namespace>")
      .option("--context <name>", "the kubeconfig context to use")
      .option("-c, --kubeconfig <file>", "the kubeconfig file to use")
      .option("-n, --namespace <ns>", "namespace when <pod> has none", "default")
      .option("-o, --output <format>", "short | wide | json", "short")
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s) });
    cmd.parse(argv, { from: "user" });
    const [what, podArg] = cmd.processedArgs as [string, string];
    const o = cmd.opts<{ context?: string; kubeconfig?: string; namespace: string; output: string }>();
    const kinds = [
      "endpoint",
      "endpoints",
      "ep",
      "cluster",
      "clusters",
      "c",
      "listener",
      "listeners",
      "l",
      "route",
      "routes",
      "r",
      "secret",
      "secrets",
      "s",
    ];
    if (!kinds.includes(what))
      throw new Error(`unknown config type "${what}": use endpoint, cluster, listener, route or secret`);
    if (!["short", "wide", "json"].includes(o.output))
      throw new Error(`unknown output format "${o.output}": use short, wide or json`);
    const { kc } = openCluster(o);
    const ref = podRef(podArg, o.namespace);
    const out = (rows: string[][], header: string[], raw: unknown) =>
      process.stdout.write(o.output === "json" ? `${JSON.stringify(raw, null, 2)}\n` : table(header, rows));
    if (what.startsWith("e")) {
      const statuses = (
        JSON.parse(await sidecarAdmin(kc, ref, "/clusters?format=json")) as { cluster_statuses: ClusterStatus[] }
      ).cluster_statuses;
      const wide = o.output === "wide";
      out(
        endpointRows(statuses, wide),
        ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER", ...(wide ? ["CLUSTER ID"] : [])],
        statuses,
      );
      return 0;
    }
    const dump = JSON.parse(await sidecarAdmin(kc, ref, "/config_dump")) as ConfigDump;
    if (what.startsWith("c"))
      out(
        clusterRows(dump),
        ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
        resources(dump, "Cluster"),
      );
    else if (what.startsWith("l"))
      out(listenerRows(dump), ["ADDRESSES", "PORT", "MATCH", "DESTINATION"], resources(dump, "Listener"));
    else if (what.startsWith("r"))
      out(
        routeRows(dump),
        ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
        resources(dump, "RouteConfiguration"),
      );
    else {
      const cert = dump.certificate;
      const rows = cert
        ? [
            [
              "default",
              "Cert Chain",
              "ACTIVE",
              new Date(cert.notAfter) > new Date() ? "true" : "false",
              cert.spiffeId,
              cert.notAfter,
            ],
          ]
        : [];
      out(rows, ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "IDENTITY", "NOT AFTER"], cert);
    }
    return 0;
  });
}
