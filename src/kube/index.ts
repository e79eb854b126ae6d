/**
 * kube: Kubernetes access for the mesh (KubeConfig loading and sanitising, a small API client,
 * informers with relist and back-off). May import only base and model; knows nothing of xDS.
 */
export * from "./objects.js";
export * from "./kubeconfig.js";
export * from "./client.js";
export * from "./informer.js";
export * from "./sync-gate.js";
