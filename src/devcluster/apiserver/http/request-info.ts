/**
 * Classifies an HTTP request the way kube-apiserver does before authorization: resource
 * or non-resource, the API group and version, namespace, resource, name, subresource and the
 * authorization verb. Pure; no registry lookups (unknown resources are found later).
 */

/** What the authorizer and the router need to know about one request. */
export interface RequestInfo {
  /** True for /api/v1/... and /apis/<group>/<version>/... paths that name a resource. */
  readonly resourceRequest: boolean;
  readonly path: string;
  /** get, list, watch, create, update, patch, delete, deletecollection; the lower-cased HTTP method for non-resource paths. */
  readonly verb: string;
  readonly apiPrefix: "api" | "apis" | "";
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  /** The name from the path, or from a `metadata.name=` field selector on list/watch (as Kubernetes does). */
  readonly name: string;
  /** True when the path named an object (not a collection). */
  readonly namedInPath: boolean;
}

const subresourcesOfNamespace = new Set(["status", "finalize"]);

function isTrue(v: string | null): boolean {
  return v === "true" || v === "1";
}

/** The exact value a field selector requires for `field` (`metadata.name=x` or `metadata.name==x`), if it does. */
export function fieldSelectorExact(selector: string, field: string): string | undefined {
  for (const term of selector.split(",")) {
    const m = /^\s*([^!=\s]+)\s*==?\s*(.*?)\s*$/.exec(term);
    if (m && m[1] === field) return m[2];
  }
  return undefined;
}

/** Parses `method` + URL into RequestInfo; `query` is the URL's search params. */
export function parseRequestInfo(method: string, pathname: string, query: URLSearchParams): RequestInfo {
  const lower = method.toLowerCase();
  const nonResource: RequestInfo = {
    resourceRequest: false,
    path: pathname,
    verb: lower,
    apiPrefix: "",
    apiGroup: "",
    apiVersion: "",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    namedInPath: false,
  };
  const parts = pathname.split("/").filter((p, i) => i > 0 || p !== "");
  if (parts[0] === "") parts.shift();
  // Trailing slash: "/api/v1/" behaves as "/api/v1".
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  let prefix: "api" | "apis";
  let group = "";
  let version: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 3) {
    prefix = "api";
    version = parts[1] ?? "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    prefix = "apis";
    group = parts[1] ?? "";
    version = parts[2] ?? "";
    rest = parts.slice(3);
  } else {
    return nonResource;
  }
  let decoded: string[];
  try {
    decoded = rest.map((p) => decodeURIComponent(p));
  } catch {
    return nonResource;
  }
  let verb: string;
  switch (lower) {
    case "post":
      verb = "create";
      break;
    case "get":
    case "head":
      verb = "get";
      break;
    case "put":
      verb = "update";
      break;
    case "patch":
      verb = "patch";
      break;
    case "delete":
      verb = "delete";
      break;
    default:
      verb = lower;
  }
  // Deprecated /watch/ prefix: same as ?watch=true.
  let watchPrefix = false;
  if (decoded[0] === "watch") {
    watchPrefix = true;
    decoded = decoded.slice(1);
  }
  let namespace = "";
  if (decoded[0] === "namespaces" && decoded.length > 1) {
    namespace = decoded[1] ?? "";
    if (decoded.length > 2 && !subresourcesOfNamespace.has(decoded[2] ?? "")) decoded = decoded.slice(2);
  }
  const resource = decoded[0] ?? "";
  const name = decoded[1] ?? "";
  const subresource = decoded[2] ?? "";
  if (resource === "" || decoded.length > 3) {
    return { ...nonResource, path: pathname };
  }
  let finalName = name;
  if (verb === "get" && name === "") {
    verb = watchPrefix || isTrue(query.get("watch")) ? "watch" : "list";
  } else if (verb === "get" && (watchPrefix || isTrue(query.get("watch")))) {
    verb = "watch";
  }
  if (verb === "delete" && name === "") verb = "deletecollection";
  if ((verb === "list" || verb === "watch") && name === "") {
    const byName = fieldSelectorExact(query.get("fieldSelector") ?? "", "metadata.name");
    if (byName !== undefined && /^[^/%]+$/.test(byName) && byName !== "." && byName !== "..") finalName = byName;
  }
  return {
    resourceRequest: true,
    path: pathname,
    verb,
    apiPrefix: prefix,
    apiGroup: group,
    apiVersion: version,
    namespace,
    resource,
    subresource,
    name: finalName,
    namedInPath: name !== "",
  };
}
