/**
 * discovery: istiod's assembly (registry → xDS server, CA, injection webhook, monitoring and
 * debug port). May import any mesh-side part (base, model, gen, kube, registry, xds, ca, inject);
 * nothing imports it but src/cmd.
 *
 * Run it as istiod does, in a pod (in-cluster config; `isthmus install` renders the Deployment)
 * or outside any cluster:
 * ```
 * CLUSTER_ID=cluster1 isthmus discovery --kubeconfig ~/.kube/config --context cluster1 \
 *   --monitoringAddr :15014 --grpcAddr :15010 --secureGrpcAddr :15012 --webhookAddr :15017 --httpAddr :8080
 * ```
 * Environment: CLUSTER_ID (default Kubernetes), POD_NAMESPACE (istio-system), NETWORK or
 * ISTIO_META_NETWORK, PILOT_REMOTE_CLUSTER_TIMEOUT (30s), PILOT_DEBOUNCE_AFTER/MAX,
 * PILOT_PUSH_THROTTLE (25), PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS, ISTHMUS_LOG_LEVEL. Mesh config (trustDomain,
 * meshId) from ConfigMap `istio` key `mesh`; injector values from ConfigMap
 * `istio-sidecar-injector` key `values`.
 */
export * from "./config.js";
export * from "./control-plane.js";
export * from "./metrics.js";
export * from "./xds-backend.js";
