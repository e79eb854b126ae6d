/**
 * The seams of the local API server: authentication, authorization, admission, virtual
 * resources (reviews, TokenRequest) and pod streams (exec, attach, port-forward, logs).
 * The API machinery calls these; other folders of devcluster implement them; the
 * composition root (src/cmd/devcluster.ts) wires them together.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { ApiClient, KubeObject, ResourceRef, UserInfo } from "./types.js";

/** Maps a bearer token to a user; undefined means "not authenticated" (the server answers 401). */
export interface Authenticator {
  authenticate(bearerToken: string | undefined): Promise<UserInfo | undefined>;
}

/** Kubernetes' authorizer.Attributes. */
export interface RequestAttributes {
  user: UserInfo;
  /** get, list, watch, create, update, patch, delete, deletecollection; for non-resource requests the HTTP verb in lower case. */
  verb: string;
  resourceRequest: boolean;
  path: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

export interface Decision {
  allowed: boolean;
  /** Why; shown in 403 messages and in SubjectAccessReview status. */
  reason: string;
}

export interface Authorizer {
  authorize(attrs: RequestAttributes): Promise<Decision>;
}

export interface AdmissionAttributes {
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  ref: ResourceRef;
  kind: { group: string; version: string; kind: string };
  subresource: string;
  namespace: string;
  name: string;
  /** The object being written (after defaulting); undefined for DELETE. */
  object?: KubeObject;
  oldObject?: KubeObject;
  user: UserInfo;
  dryRun: boolean;
}

/**
 * Admission control. `mutate` returns the object to store (the same or changed); both reject
 * with ApiError (the webhook's message, or an InternalError when a failurePolicy=Fail webhook
 * cannot be reached).
 */
export interface Admission {
  mutate(attrs: AdmissionAttributes, client: ApiClient): Promise<KubeObject | undefined>;
  validate(attrs: AdmissionAttributes, client: ApiClient): Promise<void>;
}

/**
 * A resource that is computed, not stored: TokenReview, SubjectAccessReview,
 * SelfSubjectAccessReview, the serviceaccounts/token subresource. Returns the response body
 * (e.g. the review with `status` filled in); rejects with ApiError.
 */
export interface VirtualResource {
  create(body: KubeObject, ctx: { user: UserInfo; namespace: string; name: string }): Promise<KubeObject>;
}

/** Key for VirtualResource registration: `<group>/<version>/<resource>[/<subresource>]`, core group as "". */
export function virtualResourceKey(ref: ResourceRef, subresource = ""): string {
  return `${ref.group}/${ref.version}/${ref.resource}${subresource ? `/${subresource}` : ""}`;
}

/** Pod streaming subresources, served by the node. Authentication and authorization are done; the pod exists. */
export interface PodStreams {
  /** Upgrade requests (WebSocket or SPDY/3.1) for pods/exec, pods/attach, pods/portforward. */
  upgrade(
    kind: "exec" | "attach" | "portforward",
    pod: KubeObject,
    query: URLSearchParams,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): void;
  /** GET pods/log: writes the response (plain text; streamed with follow=true). */
  logs(pod: KubeObject, query: URLSearchParams, res: ServerResponse): Promise<void>;
}
