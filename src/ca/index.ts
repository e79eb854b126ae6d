/**
 * ca: the mesh's certificate authority, as istiod runs it. Loads the plug-in `cacerts` or a
 * self-signed root, signs proxies' CSRs over Istio's certificate service after a TokenReview
 * in the proxy's own cluster, issues istiod's serving certificates, and publishes the root.
 * May import base, model, gen and kube only; talks to Kubernetes through CaKubeClient.
 */
export * from "./authenticate.js";
export * from "./authority.js";
export * from "./kube-api.js";
export * from "./pki.js";
export * from "./proto.js";
export * from "./publish.js";
export * from "./service.js";
export * from "./store.js";
export * from "./kube-adapter.js";
