/**
 * The computed (never stored) resources of authentication and authorization: TokenReview,
 * SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
 * SelfSubjectRulesReview and the serviceaccounts/token subresource (TokenRequest).
 */
import { type Authorizer, type RequestAttributes, type VirtualResource, virtualResourceKey } from "../api/plugins.js";
import { type ApiClient, type KubeObject, Resources, type UserInfo } from "../api/types.js";
import { badRequest, conflict, invalid } from "../apiserver/errors.js";
import type { TokenAuthenticator } from "./authenticator.js";
import { rec, str, strings } from "./fields.js";
import { RbacAuthorizer } from "./rbac.js";
import type { BoundObject, ServiceAccountTokens } from "./tokens.js";

export interface VirtualResourcesOptions {
  /** Reads ServiceAccounts, Pods and Secrets for TokenRequest. */
  client: ApiClient;
  tokens: ServiceAccountTokens;
  authenticator: TokenAuthenticator;
  /** Answers the access reviews; when it is an RbacAuthorizer, SelfSubjectRulesReview is served too. */
  authorizer: Authorizer;
}

const authnGroup = "authentication.k8s.io";
const authzGroup = "authorization.k8s.io";
/** Bounds Kubernetes puts on TokenRequest.spec.expirationSeconds. */
const minExpirationSeconds = 600;
const maxExpirationSeconds = 2 ** 32;

function echo(body: KubeObject, group: string, kind: string, status: Record<string, unknown>): KubeObject {
  return {
    apiVersion: `${group}/v1`,
    kind,
    metadata: { ...body.metadata },
    spec: rec(body.spec),
    status,
  };
}

function extraOf(v: unknown): Record<string, string[]> | undefined {
  const o = rec(v);
  const out: Record<string, string[]> = {};
  for (const [k, vals] of Object.entries(o)) out[k] = strings(vals);
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Turns an access review's spec into authorizer attributes, or an Invalid error naming the
 * review kind when it has neither or both of resourceAttributes and nonResourceAttributes.
 */
function reviewAttributes(kind: string, spec: Record<string, unknown>, user: UserInfo): RequestAttributes {
  const ra = spec.resourceAttributes === undefined ? undefined : rec(spec.resourceAttributes);
  const nra = spec.nonResourceAttributes === undefined ? undefined : rec(spec.nonResourceAttributes);
  if ((ra === undefined) === (nra === undefined)) {
    throw invalid(authzGroup, kind, "", [
      {
        reason: "FieldValueInvalid",
        message: `Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified`,
        field: "spec.resourceAttributes",
      },
    ]);
  }
  if (nra) {
    return {
      user,
      verb: str(nra.verb),
      resourceRequest: false,
      path: str(nra.path),
      apiGroup: "",
      apiVersion: "",
      resource: "",
      subresource: "",
      namespace: "",
      name: "",
    };
  }
  const r = ra ?? {};
  return {
    user,
    verb: str(r.verb),
    resourceRequest: true,
    path: "",
    apiGroup: str(r.group),
    apiVersion: str(r.version),
    resource: str(r.resource),
    subresource: str(r.subresource),
    namespace: str(r.namespace),
    name: str(r.name),
  };
}

async function accessStatus(authorizer: Authorizer, attrs: RequestAttributes): Promise<Record<string, unknown>> {
  try {
    const d = await authorizer.authorize(attrs);
    return { allowed: d.allowed, ...(d.reason ? { reason: d.reason } : {}) };
  } catch (err) {
    // An authorizer failure is reported in the review, as Kubernetes does, not as a failed request.
    return { allowed: false, evaluationError: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The virtual resources of this folder, keyed by virtualResourceKey(): the lead registers
 * them with the API machinery, which has already authenticated and authorized the `create`.
 */
export function createVirtualResources(opts: VirtualResourcesOptions): Map<string, VirtualResource> {
  const { client, tokens, authenticator, authorizer } = opts;
  const out = new Map<string, VirtualResource>();
  const key = (group: string, resource: string, sub = "") =>
    virtualResourceKey({ group, version: "v1", resource }, sub);

  out.set(key(authnGroup, "tokenreviews"), {
    async create(body) {
      const spec = rec(body.spec);
      const token = str(spec.token);
      if (!token) throw badRequest("token is required for TokenReview in authentication");
      const result = await authenticator.review(token, strings(spec.audiences));
      const status = result.authenticated
        ? { authenticated: true, user: result.user, audiences: result.audiences }
        : { user: {}, error: result.error };
      return echo(body, authnGroup, "TokenReview", status);
    },
  });

  // `kubectl auth whoami`.
  out.set(key(authnGroup, "selfsubjectreviews"), {
    async create(body, ctx) {
      const u = ctx.user;
      const userInfo = {
        username: u.username,
        ...(u.uid ? { uid: u.uid } : {}),
        groups: u.groups,
        ...(u.extra ? { extra: u.extra } : {}),
      };
      return {
        apiVersion: `${authnGroup}/v1`,
        kind: "SelfSubjectReview",
        metadata: { ...body.metadata },
        status: { userInfo },
      };
    },
  });

  out.set(key(authzGroup, "selfsubjectaccessreviews"), {
    async create(body, ctx) {
      const attrs = reviewAttributes("SelfSubjectAccessReview", rec(body.spec), ctx.user);
      return echo(body, authzGroup, "SelfSubjectAccessReview", await accessStatus(authorizer, attrs));
    },
  });

  const subjectReview = (kind: string, namespace?: string): VirtualResource => ({
    async create(body) {
      const spec = rec(body.spec);
      const user: UserInfo = {
        username: str(spec.user),
        groups: strings(spec.groups),
        ...(str(spec.uid) ? { uid: str(spec.uid) } : {}),
      };
      const extra = extraOf(spec.extra);
      if (extra) user.extra = extra;
      if (!user.username && user.groups.length === 0) {
        throw invalid(authzGroup, kind, "", [
          {
            reason: "FieldValueInvalid",
            message: `Invalid value: "": at least one of user or group must be specified`,
            field: "spec.user",
          },
        ]);
      }
      const attrs = reviewAttributes(kind, spec, user);
      if (namespace !== undefined) {
        if (!attrs.resourceRequest) {
          throw invalid(authzGroup, kind, "", [
            {
              reason: "FieldValueInvalid",
              message: "Invalid value: disallowed on this kind of request",
              field: "spec.nonResourceAttributes",
            },
          ]);
        }
        if (attrs.namespace !== namespace) {
          throw badRequest(`spec.resourceAttributes.namespace must match namespace: ${namespace}`);
        }
      }
      return echo(body, authzGroup, kind, await accessStatus(authorizer, attrs));
    },
  });
  out.set(key(authzGroup, "subjectaccessreviews"), subjectReview("SubjectAccessReview"));
  out.set(key(authzGroup, "localsubjectaccessreviews"), {
    create: (body, ctx) => subjectReview("LocalSubjectAccessReview", ctx.namespace).create(body, ctx),
  });

  if (authorizer instanceof RbacAuthorizer) {
    out.set(key(authzGroup, "selfsubjectrulesreviews"), {
      async create(body, ctx) {
        const namespace = str(rec(body.spec).namespace);
        const errors: string[] = [];
        const resourceRules: Record<string, unknown>[] = [];
        const nonResourceRules: Record<string, unknown>[] = [];
        for await (const applied of authorizer.bindingsFor(ctx.user, namespace, errors)) {
          for (const r of applied.rules) {
            if ((r.nonResourceURLs ?? []).length > 0) {
              nonResourceRules.push({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs });
            } else {
              resourceRules.push({
                verbs: r.verbs,
                apiGroups: r.apiGroups ?? [],
                resources: r.resources ?? [],
                ...((r.resourceNames ?? []).length > 0 ? { resourceNames: r.resourceNames } : {}),
              });
            }
          }
        }
        return echo(body, authzGroup, "SelfSubjectRulesReview", {
          resourceRules,
          nonResourceRules,
          incomplete: errors.length > 0,
          ...(errors.length > 0 ? { evaluationError: errors.join(", ") } : {}),
        });
      },
    });
  }

  out.set(key("", "serviceaccounts", "token"), {
    async create(body, ctx) {
      if (!ctx.name || !ctx.namespace) {
        throw badRequest(
          "a TokenRequest needs the service account's namespace and name (serviceaccounts/<name>/token)",
        );
      }
      const spec = rec(body.spec);
      const expirationSeconds = spec.expirationSeconds === undefined ? 3600 : spec.expirationSeconds;
      const bad = (message: string) =>
        invalid(authnGroup, "TokenRequest", ctx.name, [
          { reason: "FieldValueInvalid", message, field: "spec.expirationSeconds" },
        ]);
      if (typeof expirationSeconds !== "number" || !Number.isInteger(expirationSeconds)) {
        throw bad(`Invalid value: ${JSON.stringify(expirationSeconds)}: must be an integer number of seconds`);
      }
      if (expirationSeconds < minExpirationSeconds) {
        throw bad(`Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes`);
      }
      if (expirationSeconds > maxExpirationSeconds) {
        throw bad(`Invalid value: ${expirationSeconds}: may not specify a duration larger than 2^32 seconds`);
      }
      // Rejects with the API's own 404 when the ServiceAccount does not exist.
      const sa = await client.get(Resources.serviceaccounts, ctx.namespace, ctx.name);
      const audiences = strings(spec.audiences);
      const refIn = spec.boundObjectRef === undefined ? undefined : rec(spec.boundObjectRef);
      let bound: BoundObject | undefined;
      let boundRef: Record<string, unknown> | undefined;
      if (refIn) {
        const kind = str(refIn.kind);
        const name = str(refIn.name);
        if (kind !== "Pod" && kind !== "Secret") {
          throw badRequest(
            `cannot bind token for serviceaccount "${ctx.name}" to object of kind ${JSON.stringify(kind)}: only Pod and Secret are supported`,
          );
        }
        const obj = await client.get(kind === "Pod" ? Resources.pods : Resources.secrets, ctx.namespace, name);
        const uid = obj.metadata.uid ?? "";
        if (str(refIn.uid) && str(refIn.uid) !== uid) {
          throw conflict(
            "",
            kind,
            name,
            `the UID in the bound object reference (${str(refIn.uid)}) does not match the UID in record. The object might have been deleted and then recreated`,
          );
        }
        if (kind === "Pod") {
          const podSa = str(rec(obj.spec).serviceAccountName) || "default";
          if (podSa !== ctx.name) {
            throw badRequest(
              `cannot bind token for serviceaccount "${ctx.name}" to pod running with different serviceaccount name.`,
            );
          }
        }
        if (obj.metadata.deletionTimestamp) {
          throw badRequest(`cannot bind token to ${kind} "${name}": it is being deleted`);
        }
        bound = { kind, name, uid };
        boundRef = { kind, apiVersion: "v1", name, uid };
      }
      const issued = tokens.issue({
        namespace: ctx.namespace,
        serviceAccount: { name: ctx.name, uid: sa.metadata.uid ?? "" },
        ...(audiences.length > 0 ? { audiences } : {}),
        expirationSeconds,
        ...(bound ? { boundObject: bound } : {}),
      });
      return {
        apiVersion: `${authnGroup}/v1`,
        kind: "TokenRequest",
        metadata: {
          name: ctx.name,
          namespace: ctx.namespace,
          creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
        },
        spec: {
          audiences: audiences.length > 0 ? audiences : [...tokens.apiAudiences],
          expirationSeconds,
          ...(boundRef ? { boundObjectRef: boundRef } : {}),
        },
        status: { token: issued.token, expirationTimestamp: issued.expirationTimestamp },
      };
    },
  });

  return out;
}
