/**
 * auth: security and admission of a local cluster's API server. Owns the cluster PKI (CA,
 * serving certificate, service-account signing key, admin token), service-account tokens,
 * authentication, RBAC authorization, the review/TokenRequest virtual resources and webhook
 * admission. Imports only src/base, src/devcluster/api and the API server's Status builders
 * (apiserver/errors.ts), so its failures read exactly like the API server's own.
 *
 * Wiring (composition root):
 *   const pki = await loadPki(dir) (then ensureServingCert(pki, {...}) + savePki if reissued)
 *              or createClusterPki({...}) + savePki(dir, pki)
 *   const { tokens, authenticator, authorizer } = await wireAuth({ client, pki, virtualResources })
 *     (tokens, authenticator, RBAC on live objects, the review resources and the bootstrap RBAC
 *     objects; by hand instead: a watchedRbacSource(client, log) started with a signal for RBAC)
 *   const admission = new WebhookAdmission({ log }); admission.start(client, signal)   // start() optional
 *   optional: admission = combineAdmission(new RbacEscalationAdmission({ authorizer,
 *     privilegedUsers: [internalUser.username] }), webhookAdmission) (needs the authorizer, so
 *     hand LocalApi a delegating Admission; see escalation.test.ts)
 * LocalApi takes `admission` and `virtualResources` at construction: pass an empty Map and fill
 * it from createVirtualResources() once the client exists (see wiring.test.ts).
 */
export {
  adminUser,
  TokenAuthenticator,
  type TokenAuthenticatorOptions,
  type TokenReviewResult,
} from "./authenticator.js";
export {
  combineAdmission,
  RbacEscalationAdmission,
  type RbacEscalationOptions,
  ruleCovers,
  uncoveredRules,
} from "./escalation.js";
export { applyJsonPatch, type JsonPatchOperation, jsonEqual, parseJsonPointer } from "./json-patch.js";
export { type JwtAlgorithm, type JwtKey, type JwtResult, jwtKeyFromPem, signJwt, verifyJwt } from "./jwt.js";
export {
  type ClusterPki,
  type ClusterPkiOptions,
  createClusterPki,
  ensureServingCert,
  kubernetesServiceDnsNames,
  loadPki,
  PkiError,
  savePki,
} from "./pki.js";
export {
  type AppliedBinding,
  bootstrapRbacObjects,
  liveRbacSource,
  type PolicyRule,
  RbacAuthorizer,
  type RbacAuthorizerOptions,
  type RbacSource,
  type RbacSubject,
  ruleAllows,
  rulesOf,
  subjectMatches,
  superuserGroup,
  type WatchedRbacSource,
  watchedRbacSource,
} from "./rbac.js";
export { createVirtualResources, type VirtualResourcesOptions } from "./reviews.js";
export {
  type BoundObject,
  defaultIssuer,
  type IssuedToken,
  type IssueRequest,
  legacyIssuer,
  ServiceAccountTokens,
  type ServiceAccountTokensOptions,
  serviceAccountUser,
  type TokenVerification,
} from "./tokens.js";
export { WatchedCollection, type WatchedCollectionOptions } from "./watched-collection.js";
export { type WireAuthOptions, type WiredAuth, wireAuth } from "./wiring.js";
export {
  admissionReview,
  type DialTarget,
  endpointServiceResolver,
  rulesMatch,
  type Webhook,
  WebhookAdmission,
  type WebhookAdmissionOptions,
  type WebhookRule,
  webhookMatchesRequest,
  webhooksOf,
} from "./webhooks.js";
