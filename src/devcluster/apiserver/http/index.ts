/**
 * apiserver/http: the local cluster's HTTPS Kubernetes API (kube-apiserver's wire behaviour for
 * kubectl 1.32 and @kubernetes/client-node). Owns authentication/authorization of requests,
 * discovery, OpenAPI v3, REST routing, watch streaming, Tables and pod-stream hand-off.
 * Holds no objects: every object operation goes to the store's LocalApiClient.
 * Imports only base, devcluster/api and the sibling apiserver files (registry, schema, errors);
 * testing.ts (test-only harness: whole stack on 127.0.0.1:0 + kubeconfig) also imports auth and controllers.
 *
 * Exported API (what the cluster daemon wires):
 * ```ts
 * const http = new ApiHttpServer({
 *   api: localApi.client(),          // LocalApiClient; every write passes { user } of the caller
 *   registry: localApi.resources,    // discovery + OpenAPI are rebuilt from it (CRDs appear at once)
 *   authenticator, authorizer,       // src/devcluster/api/plugins.ts (B's implementations)
 *   podStreams,                      // optional; exec/attach/portforward/log answer 503 without it
 *   tls: { cert, key },              // PEM serving certificate and key
 *   host: "10.200.0.1", port: 0,     // 0 = any free port
 *   log,
 *   gitVersion: "v1.32.4",           // optional; /version (the kubectl dispatcher picks its minor from it)
 *   maxBodyBytes,                    // optional; default 3 MiB (413 above)
 *   minWatchTimeoutSeconds,          // optional; watches without timeoutSeconds end in [min, 2*min) s, default 1800
 *   builtinSchemas,                  // optional; false publishes untagged OpenAPI placeholders (kubectl then
 *                                    // uses its compiled-in patch metadata); default true (schema.ts tables)
 * });
 * const { host, port } = await http.listen();
 * await http.stopListening();         // outage: close listener, end watches, drop connections; state kept
 * await http.listen();                // back on the same port (rejects with EADDRINUSE if it was taken meanwhile)
 * await http.close();
 * ```
 * Behaviour worth knowing:
 * - No or unknown bearer token: 401 Status (anonymous is refused), except /healthz, /livez,
 *   /readyz and /version, which answer anyone (so the daemon's readiness probe needs no token).
 * - Discovery and /openapi/v3 are open to every authenticated user (Kubernetes' system:discovery);
 *   every resource request is authorized with Kubernetes' RequestAttributes and verbs. Upgrades to
 *   pods/exec|attach|portforward need `create` on the subresource (as Kubernetes 1.32 checks).
 * - /openapi/v2 answers 404: kubectl 1.29+ uses only v3 (checked with kubectl 1.32 in the tests).
 * - `application/apply-patch+yaml` (server-side apply) goes to LocalApiClient.apply (fieldValidation
 *   Strict by default, `force` from the query); a store without apply answers 415 with a hint.
 * - kubectl's typed clients write protobuf (`kubectl create ns|secret|configmap|sa|service|deployment|role...`,
 *   `auth can-i`): those kinds are decoded (protobuf.ts); others get 415 naming the kind. Answers are JSON.
 * - `Impersonate-User/Group/Uid/Extra-*` (kubectl --as) are honoured after an `impersonate` check.
 * - Lists without a Table go out from the store's JSON texts (LocalApiClient.listJson) when available.
 * - Protobuf is never served; clients that also accept JSON get JSON.
 *
 * NEEDS FROM A1 (store): nothing blocking. Used: LocalApiClient.getSubresource/deleteCollection/
 * apply/listJson, EngineWriteOptions.fieldValidation/onWarning, schema.ts openApiSchemas/modelOf.
 */
export { type ApiHttpServerOptions, ApiHttpServer, defaultMaxBodyBytes } from "./server.js";
export { parseRequestInfo, type RequestInfo } from "./request-info.js";
export { toTable, humanDuration, podStatusReason } from "./table.js";
