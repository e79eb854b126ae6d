/**
 * How a controller claims its dependents (a Deployment its ReplicaSets, a ReplicaSet its pods):
 * keep what it controls and still selects, adopt orphans it selects, release what it no longer selects.
 */
import type { LabelSelector } from "../api/label-selector.js";
import { type ApiClient, isApiError, type KubeObject, type OwnerReference, type ResourceRef } from "../api/types.js";
import { controllerRef, controllerRefTo, selectorPicks } from "./objects.js";

export interface ClaimOptions<T extends KubeObject> {
  client: ApiClient;
  /** The dependents' resource, where their ownerReferences are patched. */
  resource: ResourceRef;
  owner: KubeObject;
  /** The owner's apiVersion and kind, for the controller reference an adoption writes. */
  ownerApiVersion: string;
  ownerKind: string;
  selector: LabelSelector | undefined;
  /** Whether an orphan the selector picks may be adopted now (e.g. not being deleted). */
  mayAdopt(dependent: T): boolean;
}

/**
 * The dependents of `owner` among `candidates`: those it controls and its selector still picks, and
 * orphans it picks that it adopts now (the patched objects). Those it controls but no longer picks are
 * released. An adoption or release that finds the object gone or changed (404, 409) is skipped: the
 * informer's next event brings the owner back to look again.
 */
export async function claimDependents<T extends KubeObject>(
  candidates: readonly T[],
  opts: ClaimOptions<T>,
): Promise<T[]> {
  const uid = opts.owner.metadata.uid;
  const setOwners = async (obj: T, refs: OwnerReference[]): Promise<T | undefined> => {
    try {
      return (await opts.client.patch(
        opts.resource,
        obj.metadata.namespace,
        obj.metadata.name ?? "",
        "application/merge-patch+json",
        {
          metadata: { resourceVersion: obj.metadata.resourceVersion, ownerReferences: refs.length > 0 ? refs : null },
        },
      )) as T;
    } catch (err) {
      if (isApiError(err, 404) || isApiError(err, 409)) return undefined;
      throw err;
    }
  };
  const out: T[] = [];
  for (const obj of candidates) {
    const ref = controllerRef(obj);
    if (ref && ref.uid !== uid) continue;
    const picked = selectorPicks(opts.selector, obj.metadata.labels);
    const refs = obj.metadata.ownerReferences ?? [];
    if (ref && picked) {
      out.push(obj);
    } else if (ref) {
      await setOwners(
        obj,
        refs.filter((r) => r.uid !== uid),
      );
    } else if (picked && opts.mayAdopt(obj)) {
      const adopted = await setOwners(obj, [
        ...refs,
        controllerRefTo(opts.owner, opts.ownerApiVersion, opts.ownerKind),
      ]);
      if (adopted) out.push(adopted);
    }
  }
  return out;
}
