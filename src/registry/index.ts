/**
 * registry: the ingest side of the control plane. One ClusterRegistry per Kubernetes cluster
 * (informers → ClusterService/MeshEndpoint), the Aggregate that merges them into a ServiceView
 * and classifies changes (full vs EDS), and the multicluster SecretController.
 * May import only base, model and kube.
 */
export * from "./convert.js";
export * from "./aggregate.js";
export * from "./cluster-registry.js";
export * from "./secret-controller.js";
export * from "./remote.js";
