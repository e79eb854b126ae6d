/**
 * The EndpointSlice controller (and the core/v1 Endpoints one): for every Service with a
 * selector, the pods it selects that have an IP, with ready/serving/terminating conditions,
 * the Service's ports with target ports resolved per pod (named container ports included),
 * one slice per distinct port list, labelled `kubernetes.io/service-name` and owned by the Service.
 */
import type { Logger } from "../../base/index.js";
import { type ApiClient, type KubeObject, Resources, isApiError } from "../api/types.js";
import { stableStringify } from "./hash.js";
import type { Informer } from "./informer.js";
import { splitKey } from "./informer.js";
import {
  clone,
  controllerRefTo,
  isPodReady,
  type Pod,
  type Service,
  type ServicePort,
  serviceSelects,
} from "./objects.js";
import { WorkQueue } from "./queue.js";
import { type ControllerContext, deleteExactly, nsKey } from "./shared.js";

export const serviceNameLabel = "kubernetes.io/service-name";
export const managedByLabel = "endpointslice.kubernetes.io/managed-by";
export const managedByValue = "endpointslice-controller.k8s.io";
export const headlessLabel = "service.kubernetes.io/headless";
export const skipMirrorLabel = "endpointslice.kubernetes.io/skip-mirror";
const zoneLabel = "topology.kubernetes.io/zone";
/** Kubernetes' default cap on endpoints per slice. */
export const maxEndpointsPerSlice = 100;

export interface SlicePort {
  name: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

export interface SliceEndpoint {
  addresses: string[];
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
  hostname?: string;
  targetRef: { kind: "Pod"; namespace: string; name: string; uid: string };
  nodeName?: string;
  zone?: string;
}

/** One slice the Service should have: its ports and endpoints (names are the API server's to pick). */
export interface DesiredSlice {
  ports: SlicePort[];
  endpoints: SliceEndpoint[];
}

/**
 * The container port a Service port's targetPort means for `pod`: a number as it is, a name
 * looked up in the pod's containers (same protocol), unset = the Service port. Undefined when
 * a name does not resolve on this pod (the pod then has no endpoint port for it).
 */
export function resolveTargetPort(sp: ServicePort, pod: Pod): number | undefined {
  const tp = sp.targetPort;
  if (tp === undefined || tp === "" || tp === 0) return sp.port;
  if (typeof tp === "number") return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const protocol = sp.protocol ?? "TCP";
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === tp && (p.protocol ?? "TCP") === protocol) return p.containerPort;
  }
  return undefined;
}

/** The pod's IPv4 address, if it has one. */
export function podIPv4(pod: Pod): string | undefined {
  const ips = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)];
  return ips.find((ip): ip is string => typeof ip === "string" && /^\d+\.\d+\.\d+\.\d+$/.test(ip));
}

/**
 * The slices a Service should have for these pods (already filtered to its namespace):
 * pods it selects that have an IPv4 address and are not finished, grouped by resolved port
 * list, at most maxEndpointsPerSlice each; one empty slice when nothing matches. Pure.
 */
export function desiredSlices(svc: Service, pods: Pod[], nodeZones: ReadonlyMap<string, string>): DesiredSlice[] {
  const groups = new Map<string, DesiredSlice>();
  const servicePorts = svc.spec?.ports ?? [];
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const svcName = svc.metadata.name ?? "";
  const sorted = [...pods].sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
  for (const pod of sorted) {
    if (!serviceSelects(svc.spec?.selector, pod.metadata.labels)) continue;
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") continue;
    const ip = podIPv4(pod);
    if (!ip) continue;
    const ports: SlicePort[] = [];
    for (const sp of servicePorts) {
      const port = resolveTargetPort(sp, pod);
      if (port === undefined) continue;
      const p: SlicePort = { name: sp.name ?? "", port, protocol: sp.protocol ?? "TCP" };
      if (sp.appProtocol) p.appProtocol = sp.appProtocol;
      ports.push(p);
    }
    const terminating = pod.metadata.deletionTimestamp !== undefined;
    const serving = isPodReady(pod);
    const ep: SliceEndpoint = {
      addresses: [ip],
      conditions: {
        ready: publishNotReady || (serving && !terminating),
        serving: publishNotReady || serving,
        terminating,
      },
      targetRef: {
        kind: "Pod",
        namespace: pod.metadata.namespace ?? "",
        name: pod.metadata.name ?? "",
        uid: pod.metadata.uid ?? "",
      },
    };
    if (pod.spec?.hostname && pod.spec.subdomain === svcName) ep.hostname = pod.spec.hostname;
    const node = pod.spec?.nodeName;
    if (node) {
      ep.nodeName = node;
      const zone = nodeZones.get(node);
      if (zone) ep.zone = zone;
    }
    const key = stableStringify(ports);
    let g = groups.get(key);
    if (!g) {
      g = { ports, endpoints: [] };
      groups.set(key, g);
    }
    g.endpoints.push(ep);
  }
  const out: DesiredSlice[] = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.endpoints.length; i += maxEndpointsPerSlice) {
      out.push({ ports: g.ports, endpoints: g.endpoints.slice(i, i + maxEndpointsPerSlice) });
    }
  }
  if (out.length === 0) out.push({ ports: [], endpoints: [] });
  return out;
}

/** The labels every slice of the Service carries: the Service's own, plus the controller's. */
export function sliceLabels(svc: Service): Record<string, string> {
  const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}) };
  labels[serviceNameLabel] = svc.metadata.name ?? "";
  labels[managedByLabel] = managedByValue;
  if (svc.spec?.clusterIP === "None") labels[headlessLabel] = "";
  else delete labels[headlessLabel];
  return labels;
}

/** The core/v1 Endpoints subsets for these slices: ready addresses and not-ready ones, per port list. Pure. */
export function endpointsSubsets(slices: DesiredSlice[]): unknown[] {
  const subsets: unknown[] = [];
  for (const s of slices) {
    if (s.endpoints.length === 0) continue;
    const addr = (e: SliceEndpoint) => {
      const a: Record<string, unknown> = { ip: e.addresses[0], targetRef: e.targetRef };
      if (e.hostname) a.hostname = e.hostname;
      if (e.nodeName) a.nodeName = e.nodeName;
      return a;
    };
    const ready = s.endpoints.filter((e) => e.conditions.ready).map(addr);
    const notReady = s.endpoints.filter((e) => !e.conditions.ready && !e.conditions.terminating).map(addr);
    if (ready.length === 0 && notReady.length === 0) continue;
    const subset: Record<string, unknown> = {};
    if (ready.length > 0) subset.addresses = ready;
    if (notReady.length > 0) subset.notReadyAddresses = notReady;
    if (s.ports.length > 0) {
      subset.ports = s.ports.map((p) => {
        const o: Record<string, unknown> = { port: p.port, protocol: p.protocol };
        if (p.name) o.name = p.name;
        if (p.appProtocol) o.appProtocol = p.appProtocol;
        return o;
      });
    }
    subsets.push(subset);
  }
  return subsets;
}

interface EndpointSliceObject extends KubeObject {
  addressType?: string;
  endpoints?: SliceEndpoint[] | null;
  ports?: SlicePort[] | null;
}

function sliceContent(s: { ports?: SlicePort[] | null; endpoints?: SliceEndpoint[] | null }): string {
  return stableStringify({ ports: s.ports ?? [], endpoints: s.endpoints ?? [] });
}

/** The EndpointSlice and Endpoints controller; `run(signal)` works until the signal aborts. */
export class EndpointSliceController {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #services: Informer<Service>;
  readonly #pods: Informer<Pod>;
  readonly #slices: Informer<EndpointSliceObject>;
  readonly #endpoints: Informer<KubeObject>;
  readonly #nodes: Informer<KubeObject>;
  readonly #queue: WorkQueue;
  /** Slices we created that the informer has not shown yet, per Service key: name -> give-up time. */
  readonly #pending = new Map<string, Map<string, number>>();

  constructor(ctx: ControllerContext) {
    this.#client = ctx.client;
    this.#log = ctx.log.child("endpointslice");
    this.#services = ctx.informers.informer<Service>(Resources.services);
    this.#pods = ctx.informers.informer<Pod>(Resources.pods);
    this.#slices = ctx.informers.informer<EndpointSliceObject>(Resources.endpointslices);
    this.#endpoints = ctx.informers.informer<KubeObject>(Resources.endpoints);
    this.#nodes = ctx.informers.informer<KubeObject>(Resources.nodes);
    this.#queue = new WorkQueue({ name: "endpointslice", process: (k) => this.#sync(k), workers: 2, log: this.#log });
    const enqueueSvc = (svc: KubeObject) => this.#queue.add(nsKey(svc.metadata.namespace, svc.metadata.name ?? ""));
    this.#services.addHandler({ add: enqueueSvc, update: (_o, n) => enqueueSvc(n), delete: enqueueSvc });
    const enqueueFor = (pod: Pod) => {
      for (const svc of this.#services.list(pod.metadata.namespace)) {
        if (serviceSelects(svc.spec?.selector, pod.metadata.labels)) enqueueSvc(svc);
      }
    };
    this.#pods.addHandler({
      add: enqueueFor,
      update: (o, n) => {
        enqueueFor(n);
        if (stableStringify(o.metadata.labels ?? {}) !== stableStringify(n.metadata.labels ?? {})) enqueueFor(o);
      },
      delete: enqueueFor,
    });
    // Someone else editing or deleting our slices or Endpoints gets them put back.
    const owner = (obj: KubeObject) => {
      const svc = obj.metadata.labels?.[serviceNameLabel];
      if (svc && obj.metadata.labels?.[managedByLabel] === managedByValue)
        this.#queue.add(nsKey(obj.metadata.namespace, svc));
    };
    this.#slices.addHandler({ add: owner, update: (_o, n) => owner(n), delete: owner });
    const epOwner = (obj: KubeObject) => this.#queue.add(nsKey(obj.metadata.namespace, obj.metadata.name ?? ""));
    this.#endpoints.addHandler({ update: (_o, n) => epOwner(n), delete: epOwner });
    this.#nodes.addHandler({
      update: (o, n) => {
        if (o.metadata.labels?.[zoneLabel] === n.metadata.labels?.[zoneLabel]) return;
        for (const svc of this.#services.list()) enqueueSvc(svc);
      },
    });
  }

  run(signal: AbortSignal): Promise<void> {
    return this.#queue.run(signal);
  }

  async #sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const svc = this.#services.getByKey(key);
    const existing = this.#slices
      .list(namespace)
      .filter(
        (s) => s.metadata.labels?.[serviceNameLabel] === name && s.metadata.labels?.[managedByLabel] === managedByValue,
      );
    const pending = this.#pending.get(key);
    if (pending) {
      const now = Date.now();
      for (const s of existing) pending.delete(s.metadata.name ?? "");
      for (const [n, until] of pending) if (until < now) pending.delete(n);
      if (pending.size > 0) return; // the slice's ADDED event enqueues this Service again
      this.#pending.delete(key);
    }
    if (!svc || svc.metadata.deletionTimestamp || !svc.spec?.selector || Object.keys(svc.spec.selector).length === 0) {
      // Slices of a gone Service go with garbage collection (they are owned); Endpoints are not, so they go here.
      // A Service without a selector is someone else's to fill (the API server's `kubernetes`, or a user's
      // own Endpoints): leave its objects alone, as Kubernetes does.
      if (!svc) await this.#deleteEndpoints(namespace, name);
      return;
    }
    const zones = new Map<string, string>();
    for (const n of this.#nodes.list()) {
      const z = n.metadata.labels?.[zoneLabel];
      if (z) zones.set(n.metadata.name ?? "", z);
    }
    const desired = desiredSlices(svc, this.#pods.list(namespace), zones);
    const labels = sliceLabels(svc);
    const owner = controllerRefTo(svc, "v1", "Service");
    // Reuse slices with the same port list first, then any spare slice, then create.
    const pool = existing.filter((s) => s.metadata.uid && !s.metadata.deletionTimestamp);
    const take = (d: DesiredSlice): EndpointSliceObject | undefined => {
      const want = stableStringify(d.ports);
      let i = pool.findIndex((s) => stableStringify(s.ports ?? []) === want);
      if (i < 0) i = pool.length > 0 ? 0 : -1;
      return i < 0 ? undefined : pool.splice(i, 1)[0];
    };
    for (const d of desired) {
      const cur = take(d);
      if (!cur) {
        const slice: EndpointSliceObject = {
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSlice",
          metadata: { generateName: `${name}-`, namespace, labels, ownerReferences: [owner] },
          addressType: "IPv4",
          endpoints: d.endpoints,
          ports: d.ports,
        };
        const created = await this.#client.create(Resources.endpointslices, slice);
        let p = this.#pending.get(key);
        if (!p) {
          p = new Map();
          this.#pending.set(key, p);
        }
        p.set(created.metadata.name ?? "", Date.now() + 30_000);
        this.#queue.addAfter(key, 30_000);
        continue;
      }
      const sameLabels = stableStringify(cur.metadata.labels ?? {}) === stableStringify(labels);
      const sameOwner = cur.metadata.ownerReferences?.some((r) => r.uid === owner.uid) === true;
      if (sliceContent(cur) === sliceContent(d) && sameLabels && sameOwner) continue;
      const next = clone(cur);
      next.metadata.labels = labels;
      next.metadata.ownerReferences = [owner];
      next.endpoints = d.endpoints;
      next.ports = d.ports;
      await this.#client.update(Resources.endpointslices, next);
    }
    for (const s of pool) await this.#deleteSlice(s);
    await this.#syncEndpoints(svc, desired);
  }

  async #syncEndpoints(svc: Service, desired: DesiredSlice[]): Promise<void> {
    const namespace = svc.metadata.namespace ?? "";
    const name = svc.metadata.name ?? "";
    const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}), [skipMirrorLabel]: "true" };
    if (svc.spec?.clusterIP === "None") labels[headlessLabel] = "";
    const subsets = endpointsSubsets(desired);
    const cur = this.#endpoints.get(namespace, name);
    if (!cur) {
      const ep: KubeObject = { apiVersion: "v1", kind: "Endpoints", metadata: { name, namespace, labels }, subsets };
      try {
        await this.#client.create(Resources.endpoints, ep);
      } catch (err) {
        // The informer had not seen it yet; the next event brings it and we update then.
        if (!isApiError(err, 409)) throw err;
      }
      return;
    }
    if (
      stableStringify(cur.subsets ?? []) === stableStringify(subsets) &&
      stableStringify(cur.metadata.labels ?? {}) === stableStringify(labels)
    ) {
      return;
    }
    const next = clone(cur);
    next.metadata.labels = labels;
    next.subsets = subsets;
    await this.#client.update(Resources.endpoints, next);
  }

  async #deleteEndpoints(namespace: string, name: string): Promise<void> {
    const cur = this.#endpoints.get(namespace, name);
    if (cur?.metadata.labels?.[skipMirrorLabel] !== "true") return;
    await deleteExactly(this.#client, { ref: Resources.endpoints, obj: cur });
  }

  #deleteSlice(s: EndpointSliceObject): Promise<void> {
    return deleteExactly(this.#client, { ref: Resources.endpointslices, obj: s });
  }
}
