/**
 * Label selector matching shared by every part of a local cluster: the API server's `?labelSelector=`
 * strings and Deployment validation, webhook namespace/object selectors and ClusterRole aggregation
 * in auth. Pure; imports nothing.
 */

/** One requirement of a label selector, with the string form's operators (`tier in (a,b)`, `!tier`). */
export interface LabelRequirement {
  key: string;
  op: "=" | "!=" | "in" | "notin" | "exists" | "!exists";
  values: string[];
}

/** True when `labels` satisfy every requirement; no requirements match everything. */
export function matchRequirements(reqs: readonly LabelRequirement[], labels: Record<string, string>): boolean {
  for (const r of reqs) {
    const has = Object.hasOwn(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case "=":
        if (!has || v !== r.values[0]) return false;
        break;
      case "!=":
        if (has && v === r.values[0]) return false;
        break;
      case "in":
        if (!has || !r.values.includes(v ?? "")) return false;
        break;
      case "notin":
        if (has && r.values.includes(v ?? "")) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!exists":
        if (has) return false;
        break;
    }
  }
  return true;
}

/** A structured metav1.LabelSelector (matchLabels + matchExpressions); every field optional, as on the wire. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Reads a selector from an unknown field; undefined when absent or not an object. */
export function asLabelSelector(v: unknown): LabelSelector | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as LabelSelector) : undefined;
}

const operators: Record<string, LabelRequirement["op"]> = {
  In: "in",
  NotIn: "notin",
  Exists: "exists",
  DoesNotExist: "!exists",
};

/**
 * True when `labels` satisfy `selector`; an absent or empty selector matches everything. An unknown
 * operator makes the selector match nothing (Kubernetes refuses such selectors, so only hand-made
 * objects carry one, and a webhook or aggregation rule must not widen because of it).
 */
export function matchLabelSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return true;
  const reqs: LabelRequirement[] = Object.entries(selector.matchLabels ?? {}).map(([key, v]) => ({
    key,
    op: "=",
    values: [v],
  }));
  for (const e of selector.matchExpressions ?? []) {
    const op = Object.hasOwn(operators, e.operator) ? operators[e.operator] : undefined;
    if (op === undefined) return false;
    reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return matchRequirements(reqs, labels ?? {});
}
