/**
 * The node of a local cluster (what the kubelet does): registers a Node object and keeps it
 * Ready, binds unscheduled pods to itself (a local cluster has one node), runs every pod bound
 * to it through a PodWorker, and finishes deletions after the grace period.
 */
import { mkdirSync, rmSync } from "node:fs";
import { availableParallelism, hostname, release, totalmem } from "node:os";
import { errorMessage, type Logger, silentLogger } from "../../base/index.js";
import type { ApiClient, KubeObject } from "../api/types.js";
import { isApiError, Resources } from "../api/types.js";
import { Informer } from "../controllers/informer.js";
import { type ClusterNetwork, PodNetworks } from "../network/index.js";
import type { PodSpec } from "./pod-types.js";
import { PodWorker, type WorkerContext } from "./pod-worker.js";

export const kubeletVersion = "v1.32.0";

export interface NodeOptions {
  readonly client: ApiClient;
  readonly clusterName: string;
  readonly nodeName: string;
  /** From network/allocateCluster; ensureNetwork must have run. */
  readonly network: ClusterNetwork;
  /** The checkout whose bin/isthmus runs programs and isthmus images. */
  readonly repoRoot: string;
  /** The cluster's state folder; pods keep volumes and logs under `<stateDir>/pods/`. */
  readonly stateDir: string;
  readonly log?: Logger;
  /** Aborting stops the node as `stop()` does. */
  readonly signal?: AbortSignal;
  /** Where pods reach the API server; default the network's gateway and apiPort. */
  readonly apiServer?: { host: string; port: number };
  /** Restart back-off: first delay and cap in ms; default 10 s and 300 s as in Kubernetes. */
  readonly backoff?: { initialMs: number; maxMs: number };
  /** Heartbeat period of the Node status; default 10 s. */
  readonly heartbeatMs?: number;
}

let eventCounter = 0;
/**
 * Event name suffixes that sort in creation order (`<pod>.<hex time>`, as the kubelet's do):
 * kubectl describe orders events of the same second by name.
 */
const eventSuffix = (): string => (BigInt(Date.now()) * 1_000_000n + BigInt(eventCounter++ % 1_000_000)).toString(16);

/**
 * A running node. Pods bound to it run until they are deleted or the node stops; `stop()`
 * kills every pod process and tears down their namespaces (pods stay in the API, and run
 * again when a node starts on the same store).
 */
export class LocalNode {
  readonly nodeName: string;
  readonly network: ClusterNetwork;
  readonly #opts: NodeOptions;
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #ac = new AbortController();
  readonly #workers = new Map<string, PodWorker>();
  readonly #finishing = new Set<string>();
  readonly #binding = new Set<string>();
  readonly #networks: PodNetworks;
  readonly #pods: Informer;
  readonly #events = new Map<string, { name: string; count: number; namespace: string }>();
  #heartbeat: NodeJS.Timeout | undefined;
  #ctx: WorkerContext | undefined;
  #stopped: Promise<void> | undefined;

  constructor(opts: NodeOptions) {
    this.#opts = opts;
    this.#client = opts.client;
    this.nodeName = opts.nodeName;
    this.network = opts.network;
    this.#log = (opts.log ?? silentLogger).child(`node/${opts.nodeName}`);
    this.#networks = new PodNetworks(opts.network);
    this.#pods = new Informer({ client: opts.client, ref: Resources.pods, log: this.#log });
  }

  /** Registers the Node, starts watching pods and resolves once the existing pods were seen. */
  async start(): Promise<void> {
    // Pods start afresh on every node start (their processes died with the last one): drop old volumes and logs.
    rmSync(`${this.#opts.stateDir}/pods`, { recursive: true, force: true });
    mkdirSync(`${this.#opts.stateDir}/pods`, { recursive: true });
    this.#opts.signal?.addEventListener("abort", () => void this.stop(), { once: true });
    const capacity = {
      cpu: String(availableParallelism()),
      memory: `${Math.floor(totalmem() / 1024)}Ki`,
    };
    this.#ctx = {
      client: this.#client,
      nodeName: this.nodeName,
      hostIP: this.network.gateway,
      networks: this.#networks,
      catalogue: { repoRoot: this.#opts.repoRoot, nodeBinary: process.execPath },
      stateDir: this.#opts.stateDir,
      apiServer: this.#opts.apiServer ?? { host: this.network.gateway, port: this.network.apiPort },
      nodeCapacity: capacity,
      log: this.#log,
      backoff: this.#opts.backoff ?? { initialMs: 10_000, maxMs: 300_000 },
      event: (pod, type, reason, message, fieldPath) => this.#event(pod, type, reason, message, fieldPath),
    };
    await this.#register();
    this.#heartbeat = setInterval(() => void this.#beat(), this.#opts.heartbeatMs ?? 10_000);
    this.#heartbeat.unref();
    this.#pods.addHandler({
      add: (p) => this.#sync(p),
      update: (_o, p) => this.#sync(p),
      delete: (p) => this.#gone(p),
    });
    void this.#pods.run(this.#ac.signal);
    await this.#pods.waitForSync(this.#ac.signal);
  }

  #nodeObject(): KubeObject {
    return {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: this.nodeName,
        labels: {
          "kubernetes.io/hostname": this.nodeName,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": process.arch === "x64" ? "amd64" : process.arch,
          "beta.kubernetes.io/os": "linux",
          "beta.kubernetes.io/arch": process.arch === "x64" ? "amd64" : process.arch,
          "node-role.kubernetes.io/control-plane": "",
        },
      },
      spec: { podCIDR: this.network.podCidr, podCIDRs: [this.network.podCidr] },
    };
  }

  #nodeStatus(capacity: { cpu: string; memory: string }, ready: boolean): Record<string, unknown> {
    const t = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: t,
      lastTransitionTime: this.#transition(type, status, t),
    });
    const resources = { ...capacity, pods: "253", "ephemeral-storage": "10Gi" };
    return {
      capacity: resources,
      allocatable: resources,
      conditions: [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ready
          ? cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")
          : cond("Ready", "False", "KubeletNotReady", "node is shutting down"),
      ],
      addresses: [
        { type: "InternalIP", address: this.network.gateway },
        { type: "Hostname", address: this.nodeName },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
      nodeInfo: {
        machineID: this.network.clusterTag,
        systemUUID: this.network.clusterTag,
        bootID: this.network.clusterTag,
        kernelVersion: release(),
        osImage: `Isthmus local cluster on ${hostname()}`,
        containerRuntimeVersion: "isthmus://0.1.0",
        kubeletVersion,
        kubeProxyVersion: kubeletVersion,
        operatingSystem: "linux",
        architecture: process.arch === "x64" ? "amd64" : process.arch,
      },
    };
  }

  readonly #transitions = new Map<string, { status: string; time: string }>();
  #transition(type: string, status: string, t: string): string {
    const prev = this.#transitions.get(type);
    if (prev && prev.status === status) return prev.time;
    this.#transitions.set(type, { status, time: t });
    return t;
  }

  async #register(): Promise<void> {
    const obj = this.#nodeObject();
    try {
      await this.#client.create(Resources.nodes, obj);
    } catch (err) {
      if (!isApiError(err, 409)) throw err;
      const current = await this.#client.get(Resources.nodes, undefined, this.nodeName);
      await this.#client.update(Resources.nodes, {
        ...current,
        metadata: { ...current.metadata, labels: { ...current.metadata.labels, ...obj.metadata.labels } },
        spec: obj.spec,
      });
    }
    await this.#writeNodeStatus(true);
  }

  async #writeNodeStatus(ready: boolean): Promise<void> {
    const capacity = this.#ctx?.nodeCapacity ?? { cpu: "1", memory: "1Gi" };
    await this.#client.patch(
      Resources.nodes,
      undefined,
      this.nodeName,
      "application/merge-patch+json",
      { status: this.#nodeStatus(capacity, ready) },
      { subresource: "status" },
    );
  }

  async #beat(): Promise<void> {
    if (this.#ac.signal.aborted) return;
    try {
      await this.#writeNodeStatus(true);
    } catch (err) {
      if (isApiError(err, 404)) {
        // Someone deleted the Node object: register again, as the kubelet does.
        await this.#register().catch(() => {});
        return;
      }
      this.#log.warn("node heartbeat failed", { error: errorMessage(err) });
    }
  }

  #event(pod: KubeObject, type: "Normal" | "Warning", reason: string, message: string, fieldPath?: string): void {
    if (this.#ac.signal.aborted) return;
    const ns = pod.metadata.namespace ?? "default";
    const key = `${pod.metadata.uid}\u0000${reason}\u0000${message}\u0000${fieldPath ?? ""}`;
    const t = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const seen = this.#events.get(key);
    if (seen) {
      seen.count++;
      void this.#client
        .patch(Resources.events, ns, seen.name, "application/merge-patch+json", { count: seen.count, lastTimestamp: t })
        .catch(() => {});
      return;
    }
    const name = `${pod.metadata.name}.${eventSuffix()}`;
    this.#events.set(key, { name, count: 1, namespace: ns });
    const ev: KubeObject = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: ns },
      involvedObject: {
        apiVersion: "v1",
        kind: "Pod",
        name: pod.metadata.name,
        namespace: ns,
        uid: pod.metadata.uid,
        resourceVersion: pod.metadata.resourceVersion,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason,
      message,
      type,
      source: { component: reason === "Scheduled" ? "default-scheduler" : "kubelet", host: this.nodeName },
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
      reportingComponent: reason === "Scheduled" ? "default-scheduler" : "kubelet",
      reportingInstance: this.nodeName,
    };
    void this.#client.create(Resources.events, ev).catch((err) => {
      this.#log.debug("event not recorded", { reason, error: errorMessage(err) });
    });
  }

  #sync(pod: KubeObject): void {
    if (this.#ac.signal.aborted) return;
    const spec = pod.spec as PodSpec;
    const uid = pod.metadata.uid ?? "";
    if (spec.nodeName && spec.nodeName !== this.nodeName) return;
    if (spec.hostNetwork)
      this.#log.warn("hostNetwork pods run in their own namespace here", { pod: pod.metadata.name });
    const worker = this.#workers.get(uid);
    if (pod.metadata.deletionTimestamp) {
      void this.#finish(pod, worker);
      return;
    }
    if (worker) {
      worker.pod = pod;
      return;
    }
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    if (!spec.nodeName) {
      void this.#bind(pod);
      return;
    }
    this.#startWorker(pod);
  }

  #startWorker(pod: KubeObject): void {
    const uid = pod.metadata.uid ?? "";
    if (!this.#ctx || this.#workers.has(uid) || this.#finishing.has(uid)) return;
    // Deleted while being bound: the informer no longer has it, and no delete event will come.
    if (this.#pods.get(pod.metadata.namespace, pod.metadata.name ?? "")?.metadata.uid !== uid) return;
    const w = new PodWorker(this.#ctx, pod);
    this.#workers.set(uid, w);
    void w.run();
  }

  async #bind(pod: KubeObject): Promise<void> {
    const uid = pod.metadata.uid ?? "";
    if (this.#binding.has(uid)) return;
    this.#binding.add(uid);
    const ns = pod.metadata.namespace ?? "default";
    const name = pod.metadata.name ?? "";
    // Recorded before binding: the pod's own events may start as soon as the binding is visible.
    this.#event(pod, "Normal", "Scheduled", `Successfully assigned ${ns}/${name} to ${this.nodeName}`);
    try {
      let bound: KubeObject | undefined;
      try {
        await this.#client.create(
          Resources.pods,
          {
            apiVersion: "v1",
            kind: "Binding",
            metadata: { name, namespace: ns, uid },
            target: { apiVersion: "v1", kind: "Node", name: this.nodeName },
          },
          { subresource: "binding" },
        );
      } catch (err) {
        // Already bound elsewhere: the informer will show it.
        if (isApiError(err, 409)) return;
        // An API without the binding subresource: set spec.nodeName directly.
        bound = await this.#client.patch(Resources.pods, ns, name, "application/merge-patch+json", {
          spec: { nodeName: this.nodeName },
        });
      }
      this.#startWorker(bound ?? { ...pod, spec: { ...(pod.spec as object), nodeName: this.nodeName } });
    } catch (err) {
      this.#log.warn("binding failed", { pod: `${ns}/${name}`, error: errorMessage(err) });
    } finally {
      this.#binding.delete(uid);
    }
  }

  async #finish(pod: KubeObject, worker: PodWorker | undefined): Promise<void> {
    const uid = pod.metadata.uid ?? "";
    if (this.#finishing.has(uid)) return;
    this.#finishing.add(uid);
    try {
      const grace =
        pod.metadata.deletionGracePeriodSeconds ?? (pod.spec as PodSpec).terminationGracePeriodSeconds ?? 30;
      if (worker) await worker.terminate(grace);
      this.#workers.delete(uid);
      await this.#client
        .delete(Resources.pods, pod.metadata.namespace, pod.metadata.name ?? "", {
          gracePeriodSeconds: 0,
          preconditions: { uid },
        })
        .catch((err) => {
          if (!isApiError(err, 404) && !isApiError(err, 409)) throw err;
        });
    } catch (err) {
      this.#log.warn("finishing a pod's deletion failed", { pod: pod.metadata.name, error: errorMessage(err) });
    } finally {
      this.#finishing.delete(uid);
      this.#forgetEvents(uid);
    }
  }

  #forgetEvents(uid: string): void {
    for (const key of this.#events.keys()) if (key.startsWith(`${uid}\u0000`)) this.#events.delete(key);
  }

  #gone(pod: KubeObject): void {
    const uid = pod.metadata.uid ?? "";
    this.#forgetEvents(uid);
    const w = this.#workers.get(uid);
    if (!w) return;
    this.#workers.delete(uid);
    void w.terminate(0);
  }

  /** The worker running a pod (by namespace and name), for exec, logs and port-forward. */
  worker(namespace: string, name: string, uid?: string): PodWorker | undefined {
    for (const w of this.#workers.values()) {
      if (w.pod.metadata.namespace === namespace && w.pod.metadata.name === name && (!uid || w.uid === uid)) return w;
    }
    return undefined;
  }

  /** Every pod worker of this node. */
  workers(): PodWorker[] {
    return [...this.#workers.values()];
  }

  /** Kills every pod process, tears down their namespaces and marks the Node not ready. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      clearInterval(this.#heartbeat);
      this.#ac.abort();
      await Promise.all([...this.#workers.values()].map((w) => w.terminate(1)));
      this.#workers.clear();
      await this.#writeNodeStatus(false).catch(() => {});
    })();
    return this.#stopped;
  }
}

/** Creates and starts a node; see LocalNode. */
export async function startNode(opts: NodeOptions): Promise<LocalNode> {
  const node = new LocalNode(opts);
  await node.start();
  return node;
}

/** undefined when this process may run a node (root, `ip` and `nsenter` present); else what to do. */
export function checkNodePrivileges(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "local clusters need root: their node creates network namespaces, veth pairs and a bridge; run isthmus as root (e.g. with sudo)";
  }
  return undefined;
}
