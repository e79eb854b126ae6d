/**
 * Idempotent apply: get each object, create it when missing, update it only when a field we
 * set differs, leave it alone otherwise. Fields the server or the control plane fills in
 * (defaults, a Service's clusterIP, the webhook's caBundle) are not ours and are kept.
 */
import { httpStatusOf, type KubeObjectLike, type ResourceRef } from "../ca/kube-api.js";
import { kindRefs } from "./manifests.js";

/** The calls apply and uninstall make; RestKubeApi and the local cluster's ApiClient both fit. */
export interface ObjectApi {
  get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObjectLike>;
  list(
    ref: ResourceRef,
    opts?: { namespace?: string; labelSelector?: string; fieldSelector?: string },
  ): Promise<{ items: KubeObjectLike[]; resourceVersion: string }>;
  create(ref: ResourceRef, obj: KubeObjectLike): Promise<KubeObjectLike>;
  update(ref: ResourceRef, obj: KubeObjectLike): Promise<KubeObjectLike>;
  delete(ref: ResourceRef, namespace: string | undefined, name: string): Promise<unknown>;
}

export type ApplyOutcome = "created" | "configured" | "unchanged";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * True when every field of `want` is in `have` with the same value (recursively; lists must
 * have the same length, element by element). Extra fields in `have` are defaults, not drift.
 */
export function contains(have: unknown, want: unknown): boolean {
  if (isRecord(want)) {
    if (!isRecord(have)) return false;
    return Object.entries(want).every(([k, v]) => contains(have[k], v));
  }
  if (Array.isArray(want)) {
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  }
  return have === want;
}

/** The ResourceRef of an object's kind; throws for a kind install does not know (a bug). */
export function refOf(obj: KubeObjectLike): ResourceRef & { namespaced: boolean } {
  const ref = kindRefs[obj.kind];
  if (ref === undefined) throw new Error(`no REST mapping for kind ${obj.kind}`);
  return ref;
}

/** The display name istioctl and kubectl use: `Deployment/istio-system/istiod`. */
export function displayName(obj: KubeObjectLike): string {
  const ns = obj.metadata.namespace;
  return `${obj.kind}/${ns ? `${ns}/` : ""}${obj.metadata.name ?? ""}`;
}

/** What an update must carry over from the stored object so that it changes only our fields. */
function carryOver(existing: KubeObjectLike, desired: KubeObjectLike): KubeObjectLike {
  const out: KubeObjectLike = structuredClone(desired);
  out.metadata = {
    ...existing.metadata,
    labels: { ...(existing.metadata.labels ?? {}), ...(desired.metadata.labels ?? {}) },
    annotations: { ...(existing.metadata.annotations ?? {}), ...(desired.metadata.annotations ?? {}) },
  };
  if (Object.keys(out.metadata.annotations ?? {}).length === 0) delete out.metadata.annotations;
  if (desired.kind === "Service" && isRecord(existing.spec) && isRecord(out.spec)) {
    for (const k of ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"]) {
      if (existing.spec[k] !== undefined) out.spec[k] = existing.spec[k];
    }
  }
  if (desired.kind === "MutatingWebhookConfiguration" && Array.isArray(existing.webhooks)) {
    const bundles = new Map<string, unknown>();
    for (const w of existing.webhooks as { name?: string; clientConfig?: { caBundle?: unknown } }[]) {
      if (w.name && w.clientConfig?.caBundle !== undefined) bundles.set(w.name, w.clientConfig.caBundle);
    }
    for (const w of (out.webhooks ?? []) as { name?: string; clientConfig?: Record<string, unknown> }[]) {
      const b = w.name ? bundles.get(w.name) : undefined;
      if (b !== undefined && w.clientConfig) w.clientConfig.caBundle = b;
    }
  }
  return out;
}

/** Applies one object; a concurrent change (409) is retried against the fresh object. */
export async function applyObject(api: ObjectApi, desired: KubeObjectLike): Promise<ApplyOutcome> {
  const ref = refOf(desired);
  const namespace = ref.namespaced ? desired.metadata.namespace : undefined;
  const name = desired.metadata.name ?? "";
  for (let attempt = 0; ; attempt++) {
    let existing: KubeObjectLike | undefined;
    try {
      existing = await api.get(ref, namespace, name);
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
    }
    try {
      if (existing === undefined) {
        await api.create(ref, desired);
        return "created";
      }
      const { metadata: wantMeta, ...wantRest } = desired;
      const { metadata: haveMeta, ...haveRest } = existing;
      const same =
        contains(haveRest, wantRest) &&
        contains(haveMeta.labels ?? {}, wantMeta.labels ?? {}) &&
        contains(haveMeta.annotations ?? {}, wantMeta.annotations ?? {});
      if (same) return "unchanged";
      await api.update(ref, carryOver(existing, desired));
      return "configured";
    } catch (err) {
      const code = httpStatusOf(err);
      if ((code === 409 && attempt < 3) || (code === 404 && existing !== undefined && attempt < 3)) continue;
      throw err;
    }
  }
}

/** Deletes one object; returns false when it was already gone. */
export async function deleteObject(api: ObjectApi, obj: KubeObjectLike): Promise<boolean> {
  const ref = refOf(obj);
  try {
    await api.delete(ref, ref.namespaced ? obj.metadata.namespace : undefined, obj.metadata.name ?? "");
    return true;
  } catch (err) {
    if (httpStatusOf(err) === 404) return false;
    throw err;
  }
}
