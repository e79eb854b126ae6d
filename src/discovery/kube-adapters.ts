/**
 * Adapts the mesh's KubeClient to the structural client the CA expects (src/ca CaKubeClient),
 * so the CA runs on the same connections as the registry.
 */
import type { CaKubeClient, KubeObjectLike, ResourceRef } from "../ca/index.js";
import { type KubeClient, type KubeObject, type ResourceType, resourcePath } from "../kube/index.js";

const clusterScoped = new Set([
  "namespaces",
  "nodes",
  "tokenreviews",
  "subjectaccessreviews",
  "mutatingwebhookconfigurations",
  "validatingwebhookconfigurations",
  "clusterroles",
  "clusterrolebindings",
  "customresourcedefinitions",
]);

function typeOf(ref: ResourceRef): ResourceType {
  return { group: ref.group, version: ref.version, plural: ref.resource, namespaced: !clusterScoped.has(ref.resource) };
}

const requestSignal = () => AbortSignal.timeout(30_000);

/** A CaKubeClient over `client`. Errors carry `statusCode` (404, 409, ...). */
export function caClientOf(client: KubeClient): CaKubeClient {
  return {
    async get(ref, namespace, name) {
      return (await client.requestJson(
        "GET",
        resourcePath(typeOf(ref), namespace, name),
        requestSignal(),
      )) as KubeObjectLike;
    },
    async list(ref, opts = {}) {
      const res = await client.list(
        typeOf(ref),
        {
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
          ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
          ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
        },
        requestSignal(),
      );
      return { items: res.items as unknown as KubeObjectLike[], resourceVersion: res.resourceVersion };
    },
    async *watch(ref, opts, signal) {
      let rv = opts.resourceVersion;
      if (rv === undefined || rv === "") {
        // "" means "current state first": list, then watch from the list's resourceVersion.
        const listed = await client.list(
          typeOf(ref),
          {
            ...(opts.namespace ? { namespace: opts.namespace } : {}),
            ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
          },
          signal,
        );
        for (const object of listed.items) yield { type: "ADDED", object: object as unknown as KubeObjectLike };
        rv = listed.resourceVersion;
      }
      for await (const ev of client.watch(
        typeOf(ref),
        {
          resourceVersion: rv,
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
          ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
        },
        signal,
      )) {
        yield { type: ev.type, object: ev.object as unknown as KubeObjectLike };
      }
    },
    async create(ref, obj) {
      return (await client.create(typeOf(ref), obj as unknown as KubeObject, requestSignal())) as KubeObjectLike;
    },
    async update(ref, obj) {
      return (await client.update(typeOf(ref), obj as unknown as KubeObject, requestSignal())) as KubeObjectLike;
    },
  };
}
