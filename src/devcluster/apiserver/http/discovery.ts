/**
 * Discovery documents built from the resource registry on every request (so custom resources
 * appear as soon as their CRD is stored): legacy (`APIVersions`, `APIGroupList`, `APIGroup`,
 * `APIResourceList`) and aggregated (`APIGroupDiscoveryList`, apidiscovery.k8s.io v2 and v2beta1).
 */
import { createHash } from "node:crypto";
import type { ResourceInfo } from "../registry.js";

/** A subresource as discovery shows it. */
export interface SubresourceInfo {
  readonly name: string;
  /** The kind it answers with; group/version only when they differ from the parent's (Scale, TokenRequest). */
  readonly kind: { group: string; version: string; kind: string };
  readonly verbs: readonly string[];
}

/** Pod streaming subresources served through PodStreams (always listed: kubectl checks for pods/exec). */
export const podStreamSubresources = ["attach", "exec", "log", "portforward"] as const;

/** The subresources of `info`, with the kind and verbs discovery shows for each. */
export function subresourcesOf(info: ResourceInfo): SubresourceInfo[] {
  const names = new Set(info.subresources);
  if (info.group === "" && info.resource === "pods") for (const s of podStreamSubresources) names.add(s);
  const out: SubresourceInfo[] = [];
  for (const name of [...names].sort()) {
    switch (name) {
      case "status":
        out.push({ name, kind: { group: "", version: "", kind: info.kind }, verbs: ["get", "patch", "update"] });
        break;
      case "scale":
        out.push({
          name,
          kind: { group: "autoscaling", version: "v1", kind: "Scale" },
          verbs: ["get", "patch", "update"],
        });
        break;
      case "token":
        out.push({
          name,
          kind: { group: "authentication.k8s.io", version: "v1", kind: "TokenRequest" },
          verbs: ["create"],
        });
        break;
      case "finalize":
        out.push({ name, kind: { group: "", version: "", kind: info.kind }, verbs: ["update"] });
        break;
      case "exec":
        out.push({ name, kind: { group: "", version: "", kind: "PodExecOptions" }, verbs: ["create", "get"] });
        break;
      case "attach":
        out.push({ name, kind: { group: "", version: "", kind: "PodAttachOptions" }, verbs: ["create", "get"] });
        break;
      case "portforward":
        out.push({ name, kind: { group: "", version: "", kind: "PodPortForwardOptions" }, verbs: ["create", "get"] });
        break;
      case "log":
        out.push({ name, kind: { group: "", version: "", kind: "Pod" }, verbs: ["get"] });
        break;
      default:
        out.push({ name, kind: { group: "", version: "", kind: info.kind }, verbs: ["get", "patch", "update"] });
    }
  }
  return out;
}

/** Groups (in registry order, core first) and, per group, its versions (preferred first). */
export function groupVersions(resources: readonly ResourceInfo[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!resources.some((r) => r.group === "")) out.set("", ["v1"]);
  for (const r of resources) {
    const versions = out.get(r.group) ?? [];
    if (!versions.includes(r.version)) versions.push(r.version);
    out.set(r.group, versions);
  }
  for (const [g, versions] of out) out.set(g, sortVersions(versions));
  return out;
}

/** Kubernetes' version priority: GA over beta over alpha, higher numbers first. */
export function sortVersions(versions: readonly string[]): string[] {
  const key = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0];
    const level = m[2] === undefined ? 0 : m[2] === "beta" ? 1 : 2;
    return [level, -Number(m[1]), -Number(m[3] ?? 0)];
  };
  return [...versions].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < 3; i++) if ((ka[i] ?? 0) !== (kb[i] ?? 0)) return (ka[i] ?? 0) - (kb[i] ?? 0);
    return a.localeCompare(b);
  });
}

function storageVersionHash(r: ResourceInfo): string {
  return createHash("sha256").update(`${r.group}/${r.version}/${r.kind}`).digest("base64").slice(0, 12);
}

/** `GET /api`. */
export function apiVersions(serverAddress: string): object {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function apiGroup(name: string, versions: readonly string[]): object {
  const gvs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: gvs, preferredVersion: gvs[0] };
}

/** `GET /apis`: every non-core group. */
export function apiGroupList(resources: readonly ResourceInfo[]): object {
  const groups = [...groupVersions(resources)].filter(([g]) => g !== "");
  return { kind: "APIGroupList", apiVersion: "v1", groups: groups.map(([g, vs]) => apiGroup(g, vs)) };
}

/** `GET /apis/<group>`, or undefined when the group is not served. */
export function apiGroupDoc(resources: readonly ResourceInfo[], group: string): object | undefined {
  const versions = groupVersions(resources).get(group);
  if (group === "" || versions === undefined) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...apiGroup(group, versions) };
}

/** `GET /api/v1` or `/apis/<group>/<version>`, or undefined when that group version is not served. */
export function apiResourceList(
  resources: readonly ResourceInfo[],
  group: string,
  version: string,
): object | undefined {
  const list = resources.filter((r) => r.group === group && r.version === version);
  if (list.length === 0 && !(group === "" && version === "v1")) return undefined;
  const out: object[] = [];
  for (const r of [...list].sort((a, b) => a.resource.localeCompare(b.resource))) {
    out.push({
      name: r.resource,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: [...r.verbs],
      ...(r.shortNames.length > 0 ? { shortNames: [...r.shortNames] } : {}),
      ...(r.categories.length > 0 ? { categories: [...r.categories] } : {}),
      ...(r.virtual ? {} : { storageVersionHash: storageVersionHash(r) }),
    });
    for (const s of subresourcesOf(r)) {
      out.push({
        name: `${r.resource}/${s.name}`,
        singularName: "",
        namespaced: r.namespaced,
        ...(s.kind.group !== "" ? { group: s.kind.group, version: s.kind.version } : {}),
        kind: s.kind.kind,
        verbs: [...s.verbs],
      });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources: out,
  };
}

/** Aggregated discovery for `/api` (core only) or `/apis` (every other group). */
export function aggregatedDiscovery(
  resources: readonly ResourceInfo[],
  core: boolean,
  version: "v2" | "v2beta1",
): object {
  const items: object[] = [];
  for (const [group, versions] of groupVersions(resources)) {
    if ((group === "") !== core) continue;
    items.push({
      metadata: group === "" ? { creationTimestamp: null } : { name: group, creationTimestamp: null },
      versions: versions.map((v) => ({
        version: v,
        resources: resources
          .filter((r) => r.group === group && r.version === v)
          .sort((a, b) => a.resource.localeCompare(b.resource))
          .map((r) => {
            const subs = subresourcesOf(r);
            return {
              resource: r.resource,
              responseKind: { group: "", version: "", kind: r.kind },
              scope: r.namespaced ? "Namespaced" : "Cluster",
              singularResource: r.singular,
              verbs: [...r.verbs],
              ...(r.shortNames.length > 0 ? { shortNames: [...r.shortNames] } : {}),
              ...(r.categories.length > 0 ? { categories: [...r.categories] } : {}),
              ...(subs.length > 0
                ? {
                    subresources: subs.map((s) => ({
                      subresource: s.name,
                      responseKind: s.kind,
                      verbs: [...s.verbs],
                    })),
                  }
                : {}),
            };
          }),
        freshness: "Current",
      })),
    });
  }
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items,
  };
}
