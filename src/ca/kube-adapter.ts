/**
 * CaKubeClient over HTTP: adapts kube's KubeClient (any kubeconfig, local or real cluster) to
 * the ResourceRef-shaped calls the CA and the CLI make. Errors are kube's KubeApiError, whose
 * `statusCode` httpStatusOf reads.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type ResourceType, resourcePath } from "../kube/index.js";
import type { CaKubeClient, KubeObjectLike, ResourceRef } from "./kube-api.js";

function typeOf(ref: ResourceRef): ResourceType {
  // Cluster-scoped calls simply pass no namespace, so every type can be marked namespaced here.
  return { group: ref.group, version: ref.version, plural: ref.resource, namespaced: true };
}

function query(opts: { labelSelector?: string; fieldSelector?: string } | undefined): string {
  const q = new URLSearchParams();
  if (opts?.labelSelector) q.set("labelSelector", opts.labelSelector);
  if (opts?.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

/** A Kubernetes API client by ResourceRef over HTTP. The constructor does no I/O. */
export class RestKubeApi implements CaKubeClient {
  readonly client: KubeClient;
  /** Each call's deadline; a hung API server must not hang a CLI. */
  readonly timeoutMs: number;

  constructor(kc: KubeConfig | KubeClient, timeoutMs = 30_000) {
    this.client = kc instanceof KubeClient ? kc : new KubeClient(kc);
    this.timeoutMs = timeoutMs;
  }

  /** The API server URL, for messages. */
  get server(): string {
    return this.client.server;
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.client.requestJson(method, path, AbortSignal.timeout(this.timeoutMs), body);
  }

  async get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObjectLike> {
    return (await this.request("GET", resourcePath(typeOf(ref), namespace, name))) as KubeObjectLike;
  }

  async list(
    ref: ResourceRef,
    opts?: { namespace?: string; labelSelector?: string; fieldSelector?: string },
  ): Promise<{ items: KubeObjectLike[]; resourceVersion: string }> {
    const body = (await this.request("GET", `${resourcePath(typeOf(ref), opts?.namespace)}${query(opts)}`)) as {
      items?: KubeObjectLike[];
      metadata?: { resourceVersion?: string };
    };
    return { items: body.items ?? [], resourceVersion: body.metadata?.resourceVersion ?? "" };
  }

  async *watch(
    ref: ResourceRef,
    opts: { namespace?: string; resourceVersion?: string; fieldSelector?: string; labelSelector?: string },
    signal: AbortSignal,
  ): AsyncIterable<{ type: string; object: KubeObjectLike }> {
    const events = this.client.watch(typeOf(ref), { ...opts, resourceVersion: opts.resourceVersion ?? "" }, signal);
    for await (const ev of events) yield { type: ev.type, object: ev.object as unknown as KubeObjectLike };
  }

  async create(ref: ResourceRef, obj: KubeObjectLike): Promise<KubeObjectLike> {
    return (await this.request("POST", resourcePath(typeOf(ref), obj.metadata?.namespace), obj)) as KubeObjectLike;
  }

  async update(ref: ResourceRef, obj: KubeObjectLike): Promise<KubeObjectLike> {
    const path = resourcePath(typeOf(ref), obj.metadata.namespace, obj.metadata.name);
    return (await this.request("PUT", path, obj)) as KubeObjectLike;
  }

  async delete(ref: ResourceRef, namespace: string | undefined, name: string): Promise<unknown> {
    return this.request("DELETE", `${resourcePath(typeOf(ref), namespace, name)}?propagationPolicy=Background`);
  }
}
