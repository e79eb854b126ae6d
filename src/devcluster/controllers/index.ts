/**
 * controllers: what kube-controller-manager does for a local cluster, run inside its daemon.
 * Owns the namespace lifecycle (drain, then finalize), the `default` ServiceAccount and
 * `kube-root-ca.crt` ConfigMap per namespace, legacy service-account token Secrets,
 * Deployment → ReplicaSet → Pod with Kubernetes' naming and rollouts, EndpointSlices and
 * Endpoints for Services with selectors, and garbage collection by ownerReferences; it records
 * core/v1 Events as Kubernetes' controllers do. Also exports the shared informer and keyed
 * work queue the node reuses. Talks to the API only through ApiClient; imports only src/base
 * and src/devcluster/api (never mesh code).
 *
 * Wiring (src/cmd/devcluster.ts):
 *   const running = await startControllers({ client, clusterName, rootCaPem, tokens, log, signal, discovery });
 *   // `tokens`: the auth part's ServiceAccountTokens; `discovery`: () => registry.all() (optional).
 *   await running.done; // after signal aborts
 */
import { setMaxListeners } from "node:events";
import type { Logger } from "../../base/index.js";
import { errorMessage } from "../../base/index.js";
import type { ApiClient } from "../api/types.js";
import { DeploymentController } from "./deployment.js";
import { clientDiscovery, type Discovery } from "./discovery.js";
import { EndpointSliceController } from "./endpointslice.js";
import { createEventRecorder } from "./events.js";
import { GarbageCollector } from "./gc.js";
import { NamespaceController } from "./namespace.js";
import { ReplicaSetController } from "./replicaset.js";
import { type LegacyTokenIssuer, ServiceAccountsController } from "./serviceaccounts.js";
import { type ControllerContext, SharedInformers } from "./shared.js";

export { comparePodsForDeletion, podFromTemplate, replicaSetCounts } from "./replicaset.js";
export {
  deploymentStatus,
  newReplicaSetFor,
  planRollingUpdate,
  podTemplateHashLabel,
  revisionAnnotation,
  rollingBounds,
  templatesEqualIgnoringHash,
} from "./deployment.js";
export type { Discovery, ServedResource } from "./discovery.js";
export { builtinResources, clientDiscovery } from "./discovery.js";
export {
  desiredSlices,
  endpointsSubsets,
  managedByLabel,
  managedByValue,
  resolveTargetPort,
  serviceNameLabel,
} from "./endpointslice.js";
export type { EventRecorder, InvolvedObject } from "./events.js";
export { createEventRecorder, involved } from "./events.js";
export { fnv32a, podTemplateHash, randomSuffix, safeAlphabet, safeEncode, stableStringify } from "./hash.js";
export type { InformerHandler, InformerOptions } from "./informer.js";
export { Informer, objectKey, splitKey } from "./informer.js";
export type { WorkQueueOptions } from "./queue.js";
export { WorkQueue } from "./queue.js";
export type { LegacyTokenIssuer } from "./serviceaccounts.js";
export { SharedInformers } from "./shared.js";

export interface ControllersOptions {
  /** In-process API access; writes go through admission like any client's. */
  readonly client: ApiClient;
  /** The local cluster's name, for log lines. */
  readonly clusterName: string;
  /** PEM of the cluster CA: published as `kube-root-ca.crt` and put in token Secrets as `ca.crt`. */
  readonly rootCaPem: string;
  /** Signs legacy tokens for `kubernetes.io/service-account-token` Secrets. */
  readonly tokens: LegacyTokenIssuer;
  readonly log: Logger;
  /** Stops every controller and informer. */
  readonly signal: AbortSignal;
  /** Served resources (the API server's registry); default: built-ins plus CRDs listed through `client`. */
  readonly discovery?: Discovery;
}

/** Handle on running controllers. */
export interface RunningControllers {
  /** The informers the controllers share; other in-process parts may read them (never mutate objects). */
  readonly informers: SharedInformers;
  /** Settles once every controller has stopped after `signal` aborted. */
  readonly done: Promise<void>;
}

/**
 * Starts every controller for one local cluster and resolves once their informers have
 * synced (so work starts from the full state). Runs until `signal` aborts.
 */
export async function startControllers(opts: ControllersOptions): Promise<RunningControllers> {
  const log = opts.log.child(`controllers/${opts.clusterName}`);
  // Every informer, watch and queue listens for the stop; one internal signal keeps the caller's free of them.
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  if (opts.signal.aborted) stop.abort(opts.signal.reason);
  else opts.signal.addEventListener("abort", () => stop.abort(opts.signal.reason), { once: true });
  const signal = stop.signal;
  const informers = new SharedInformers(opts.client, log);
  const recorders = new Map<string, ReturnType<typeof createEventRecorder>>();
  const ctx: ControllerContext = {
    client: opts.client,
    informers,
    log,
    recorder: (component) => {
      let r = recorders.get(component);
      if (!r) {
        r = createEventRecorder({ client: opts.client, component, log });
        recorders.set(component, r);
      }
      return r;
    },
  };
  const discovery = opts.discovery ?? clientDiscovery(opts.client);
  const namespaces = new NamespaceController(ctx, discovery);
  const serviceAccounts = new ServiceAccountsController(ctx, { rootCaPem: opts.rootCaPem, tokens: opts.tokens });
  const replicaSets = new ReplicaSetController(ctx);
  const deployments = new DeploymentController(ctx);
  const endpointSlices = new EndpointSliceController(ctx);
  const gc = new GarbageCollector(ctx, discovery);
  await gc.start();
  informers.start(signal);
  await informers.waitForSync(signal);
  log.info("informers synced; controllers running");
  const runs = [namespaces, serviceAccounts, replicaSets, deployments, endpointSlices, gc].map((c) =>
    c.run(signal).catch((err: unknown) => log.error("controller stopped", { error: errorMessage(err) })),
  );
  return { informers, done: Promise.all(runs).then(() => undefined) };
}
