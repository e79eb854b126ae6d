/** Recording core/v1 Events the way Kubernetes components do, through any ApiClient. */
import { type ApiClient, type KubeObject, Resources } from "../api/types.js";
import { timestamp } from "./meta.js";

/** What an Event says about an object. */
export interface EventRecord {
  type: "Normal" | "Warning";
  /** UpperCamelCase, e.g. "Scheduled", "FailedMount". */
  reason: string;
  message: string;
  /** The reporting component, e.g. "deployment-controller", "kubelet". */
  component: string;
  /** The node, for events a node reports. */
  host?: string;
}

/**
 * Builds a core/v1 Event about `regarding` (named `<name>.<hex nanoseconds>`, in its namespace,
 * or "default" for cluster-scoped objects), as client-go's recorder does.
 */
export function newEvent(regarding: KubeObject, e: EventRecord, at = Date.now()): KubeObject {
  const m = regarding.metadata;
  const namespace = m.namespace || "default";
  const nanos = BigInt(at) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  const ts = timestamp(at);
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `${m.name ?? "unknown"}.${nanos.toString(16)}`, namespace },
    involvedObject: {
      kind: regarding.kind,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      name: m.name,
      uid: m.uid,
      apiVersion: regarding.apiVersion,
      resourceVersion: m.resourceVersion,
    },
    reason: e.reason,
    message: e.message,
    source: { component: e.component, ...(e.host ? { host: e.host } : {}) },
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
    type: e.type,
    eventTime: null,
    reportingComponent: e.component,
    reportingInstance: e.host ?? "",
  };
}

/** Creates an Event about `regarding`; resolves to the stored Event, rejects with ApiError like any create. */
export function recordEvent(client: ApiClient, regarding: KubeObject, e: EventRecord): Promise<KubeObject> {
  return client.create(Resources.events, newEvent(regarding, e));
}
