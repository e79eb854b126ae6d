/**
 * discovery: istiod's assembly (registry → xDS server, CA, monitoring and debug port).
 * May import any mesh-side part (base, model, gen, kube, registry, xds, ca, inject); nothing imports it but src/cmd.
 */
export * from "./config.js";
export * from "./control-plane.js";
export * from "./metrics.js";
export * from "./xds-backend.js";
