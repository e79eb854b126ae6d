/**
 * Content negotiation as kubectl and client-go use it: `Accept` entries with `as=`, `g=`, `v=`
 * parameters select Tables and aggregated discovery; protobuf is never served (we answer JSON,
 * which every client accepts as its fallback). Pure.
 */

/** One media range from an Accept header. */
export interface MediaRange {
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses an Accept header into its media ranges, in the client's order (q-values are ignored; clients list by preference). */
export function parseAccept(header: string | undefined): MediaRange[] {
  if (!header) return [];
  const out: MediaRange[] = [];
  for (const raw of header.split(",")) {
    const [type = "", ...rest] = raw.split(";").map((s) => s.trim());
    if (type === "") continue;
    const params: Record<string, string> = {};
    for (const p of rest) {
      const eq = p.indexOf("=");
      if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
    }
    out.push({ type: type.toLowerCase(), params });
  }
  return out;
}

function isJsonish(type: string): boolean {
  return type === "application/json" || type === "*/*" || type === "application/*";
}

/** The Table version the client asked for first (`as=Table;g=meta.k8s.io;v=v1|v1beta1`), if any, before a plain JSON entry. */
export function wantsTable(ranges: readonly MediaRange[]): "v1" | "v1beta1" | undefined {
  for (const r of ranges) {
    if (r.type === "application/json" && r.params.as === "Table" && r.params.g === "meta.k8s.io") {
      if (r.params.v === "v1" || r.params.v === "v1beta1") return r.params.v;
      continue;
    }
    if (isJsonish(r.type) && r.params.as === undefined) return undefined;
  }
  return undefined;
}

/** The aggregated discovery version the client asked for first (`as=APIGroupDiscoveryList`), if any. */
export function wantsAggregatedDiscovery(ranges: readonly MediaRange[]): "v2" | "v2beta1" | undefined {
  for (const r of ranges) {
    if (
      r.type === "application/json" &&
      r.params.as === "APIGroupDiscoveryList" &&
      r.params.g === "apidiscovery.k8s.io"
    ) {
      if (r.params.v === "v2" || r.params.v === "v2beta1") return r.params.v;
      continue;
    }
    if (isJsonish(r.type) && r.params.as === undefined) return undefined;
  }
  return undefined;
}

/** The bare media type of a Content-Type header, lower-cased ("application/json"). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}
