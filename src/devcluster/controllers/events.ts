/**
 * Records core/v1 Events about objects, as Kubernetes' controllers do, so `kubectl describe`
 * shows them. Repeats of the same reason and message for the same object within a short
 * window bump `count` on the existing Event instead of creating another.
 */
import type { Logger } from "../../base/index.js";
import { errorMessage, silentLogger } from "../../base/index.js";
import { type ApiClient, isApiError, type KubeObject, Resources } from "../api/types.js";

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

/** Records Events. Failures are logged, never thrown: an Event is best effort. */
export interface EventRecorder {
  normal(obj: InvolvedObject, reason: string, message: string): void;
  warning(obj: InvolvedObject, reason: string, message: string): void;
}

/** The involved-object reference for `obj` (apiVersion and kind given: list items may lack them). */
export function involved(obj: KubeObject, apiVersion: string, kind: string): InvolvedObject {
  return {
    apiVersion,
    kind,
    namespace: obj.metadata.namespace,
    name: obj.metadata.name ?? "",
    uid: obj.metadata.uid,
    resourceVersion: obj.metadata.resourceVersion,
  };
}

interface Recent {
  namespace: string;
  name: string;
  count: number;
  at: number;
}

const repeatWindowMs = 10 * 60_000;

/** An EventRecorder writing through `client` as `component` (e.g. "deployment-controller"). */
export function createEventRecorder(opts: { client: ApiClient; component: string; log?: Logger }): EventRecorder {
  const log = opts.log ?? silentLogger;
  const recent = new Map<string, Recent>();
  // Serialise writes per Event key so a burst of repeats bumps one object instead of racing to create several.
  const chains = new Map<string, Promise<void>>();

  const record = async (obj: InvolvedObject, type: string, reason: string, message: string): Promise<void> => {
    const now = new Date();
    const key = `${obj.uid ?? `${obj.namespace}/${obj.name}`}|${type}|${reason}|${message}`;
    const seen = recent.get(key);
    if (seen && now.getTime() - seen.at < repeatWindowMs) {
      try {
        await opts.client.patch(
          Resources.events,
          seen.namespace,
          seen.name,
          "application/merge-patch+json",
          { count: seen.count + 1, lastTimestamp: now.toISOString() },
          {},
        );
        seen.count++;
        seen.at = now.getTime();
        return;
      } catch (err) {
        // The Event was deleted (its namespace drained, or someone cleaned up): record a new one.
        if (!isApiError(err, 404)) throw err;
        recent.delete(key);
      }
    }
    const namespace = obj.namespace || "default";
    const name = `${obj.name}.${(now.getTime() * 1_000_000 + Math.floor(Math.random() * 1_000_000)).toString(16)}`;
    const event: KubeObject = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: { ...obj, namespace: obj.namespace },
      reason,
      message,
      type,
      source: { component: opts.component },
      firstTimestamp: now.toISOString(),
      lastTimestamp: now.toISOString(),
      count: 1,
      reportingComponent: opts.component,
      reportingInstance: opts.component,
    };
    await opts.client.create(Resources.events, event);
    recent.set(key, { namespace, name, count: 1, at: now.getTime() });
    if (recent.size > 4096) {
      for (const [k, r] of recent) if (now.getTime() - r.at >= repeatWindowMs) recent.delete(k);
    }
  };

  const enqueue = (obj: InvolvedObject, type: string, reason: string, message: string) => {
    const key = `${obj.uid ?? obj.name}|${reason}|${message}`;
    const prev = chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => record(obj, type, reason, message))
      .catch((err: unknown) => {
        // Namespaces being deleted refuse new objects; that is expected and not worth a warning.
        log.debug("could not record event", {
          reason,
          object: `${obj.namespace}/${obj.name}`,
          error: errorMessage(err),
        });
      });
    chains.set(key, next);
    void next.finally(() => {
      if (chains.get(key) === next) chains.delete(key);
    });
  };

  return {
    normal: (obj, reason, message) => enqueue(obj, "Normal", reason, message),
    warning: (obj, reason, message) => enqueue(obj, "Warning", reason, message),
  };
}
