/**
 * metav1.LabelSelector objects (matchLabels + matchExpressions) as webhook configurations and
 * ClusterRole aggregation rules carry them. Pure.
 */

/** A label selector as stored in objects; every field optional, as on the wire. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Reads a selector from an unknown field; undefined when absent or not an object. */
export function asLabelSelector(v: unknown): LabelSelector | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as LabelSelector) : undefined;
}

/**
 * True when `labels` satisfy `selector`. An absent or empty selector matches everything.
 * An unknown operator makes the selector match nothing (Kubernetes refuses such selectors
 * at validation, so this only guards against hand-made objects).
 */
export function matchesLabelSelector(selector: LabelSelector | undefined, labels: Record<string, string> | undefined) {
  if (!selector) return true;
  const have = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (have[k] !== v) return false;
  }
  for (const expr of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, expr.key);
    const values = expr.values ?? [];
    switch (expr.operator) {
      case "In":
        if (!present || !values.includes(have[expr.key] as string)) return false;
        break;
      case "NotIn":
        if (present && values.includes(have[expr.key] as string)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
