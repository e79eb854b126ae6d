/**
 * RBAC authorization: what Roles/ClusterRoles grant through RoleBindings/ClusterRoleBindings,
 * evaluated from the cluster's current objects, plus the `system:masters` superuser group.
 * Rule matching is pure (ruleAllows); the authorizer only gathers the objects that apply.
 */
import type { Logger } from "../../base/index.js";
import { asLabelSelector, matchLabelSelector } from "../api/label-selector.js";
import type { Authorizer, Decision, RequestAttributes } from "../api/plugins.js";
import {
  type ApiClient,
  isApiError,
  type KubeObject,
  type ResourceRef,
  Resources,
  type UserInfo,
} from "../api/types.js";
import { strings } from "./fields.js";
import { WatchedCollection } from "./watched-collection.js";

/** rbac.authorization.k8s.io/v1 PolicyRule. */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** rbac.authorization.k8s.io/v1 Subject. */
export interface RbacSubject {
  kind: string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

/** Group whose members may do anything, before RBAC is consulted (as in kube-apiserver). */
export const superuserGroup = "system:masters";

/** Reads the rules of a Role or ClusterRole, dropping malformed entries. */
export function rulesOf(role: KubeObject): PolicyRule[] {
  const rules = Array.isArray(role.rules) ? role.rules : [];
  return rules.flatMap((r): PolicyRule[] => {
    if (typeof r !== "object" || r === null) return [];
    const o = r as Record<string, unknown>;
    return [
      {
        verbs: strings(o.verbs),
        apiGroups: strings(o.apiGroups),
        resources: strings(o.resources),
        resourceNames: strings(o.resourceNames),
        nonResourceURLs: strings(o.nonResourceURLs),
      },
    ];
  });
}

function subjectsOf(binding: KubeObject): RbacSubject[] {
  const subjects = Array.isArray(binding.subjects) ? binding.subjects : [];
  return subjects.filter(
    (s): s is RbacSubject =>
      typeof s === "object" &&
      s !== null &&
      typeof (s as RbacSubject).kind === "string" &&
      typeof (s as RbacSubject).name === "string",
  );
}

function roleRefOf(binding: KubeObject): { kind: string; name: string } {
  const ref = (binding.roleRef ?? {}) as Record<string, unknown>;
  return { kind: typeof ref.kind === "string" ? ref.kind : "", name: typeof ref.name === "string" ? ref.name : "" };
}

/** True when `rule` grants the request. `resource/subresource`, `*` and `*\/sub` follow Kubernetes. */
export function ruleAllows(attrs: RequestAttributes, rule: PolicyRule): boolean {
  const verbs = rule.verbs;
  if (!verbs.includes("*") && !verbs.includes(attrs.verb)) return false;
  if (!attrs.resourceRequest) {
    return (rule.nonResourceURLs ?? []).some(
      (u) => u === "*" || u === attrs.path || (u.endsWith("*") && attrs.path.startsWith(u.slice(0, -1))),
    );
  }
  const groups = rule.apiGroups ?? [];
  if (!groups.includes("*") && !groups.includes(attrs.apiGroup)) return false;
  const combined = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const resourceOk = (rule.resources ?? []).some(
    (r) => r === "*" || r === combined || (attrs.subresource !== "" && r === `*/${attrs.subresource}`),
  );
  if (!resourceOk) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (attrs.name !== "" && names.includes(attrs.name));
}

/** True when `subject` (of a binding in `bindingNamespace`, "" for cluster bindings) names `user`. */
export function subjectMatches(subject: RbacSubject, user: UserInfo, bindingNamespace: string): boolean {
  switch (subject.kind) {
    case "User":
      return subject.name === user.username;
    case "Group":
      return user.groups.includes(subject.name);
    case "ServiceAccount": {
      // A ServiceAccount subject without a namespace means the binding's own namespace.
      const ns = subject.namespace || bindingNamespace;
      return ns !== "" && user.username === `system:serviceaccount:${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

function describeSubject(subject: RbacSubject, bindingNamespace: string): string {
  if (subject.kind === "ServiceAccount") {
    return `${subject.kind} ${JSON.stringify(`${subject.name}/${subject.namespace || bindingNamespace}`)}`;
  }
  return `${subject.kind} ${JSON.stringify(subject.name)}`;
}

/**
 * Where the authorizer reads RBAC objects from. The default reads through ApiClient on every
 * decision; a cache can stand in as long as it answers the same.
 */
export interface RbacSource {
  clusterRoleBindings(): Promise<KubeObject[]>;
  roleBindings(namespace: string): Promise<KubeObject[]>;
  clusterRoles(): Promise<KubeObject[]>;
  /** undefined when absent. */
  clusterRole(name: string): Promise<KubeObject | undefined>;
  role(namespace: string, name: string): Promise<KubeObject | undefined>;
}

async function getOrUndefined(p: Promise<KubeObject>): Promise<KubeObject | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isApiError(err, 404)) return undefined;
    throw err;
  }
}

/** An RbacSource that asks `client` each time (always current; fine for an in-memory store). */
export function liveRbacSource(client: ApiClient): RbacSource {
  return {
    clusterRoleBindings: async () => (await client.list(Resources.clusterrolebindings)).items,
    roleBindings: async (namespace) => (await client.list(Resources.rolebindings, { namespace })).items,
    clusterRoles: async () => (await client.list(Resources.clusterroles)).items,
    clusterRole: (name) => getOrUndefined(client.get(Resources.clusterroles, undefined, name)),
    role: (namespace, name) => getOrUndefined(client.get(Resources.roles, namespace, name)),
  };
}

export interface RbacAuthorizerOptions {
  /** Where RBAC objects come from; e.g. liveRbacSource(client). */
  source: RbacSource;
}

/** A binding that applies to a user, with the rules its role grants. */
export interface AppliedBinding {
  /** `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`, as Kubernetes describes it. */
  description: string;
  rules: PolicyRule[];
}

/**
 * The RBAC authorizer. Allowed decisions carry Kubernetes' reason
 * (`RBAC: allowed by RoleBinding "ns-reader/sample" of Role "reader" to ServiceAccount "ro/sample"`);
 * denials carry "" (or the lookup errors met on the way), so the 403 reads as Kubernetes' does.
 */
export class RbacAuthorizer implements Authorizer {
  readonly #source: RbacSource;

  constructor(opts: RbacAuthorizerOptions) {
    this.#source = opts.source;
  }

  async authorize(attrs: RequestAttributes): Promise<Decision> {
    if (attrs.user.groups.includes(superuserGroup)) return { allowed: true, reason: "" };
    const errors: string[] = [];
    for await (const applied of this.bindingsFor(attrs.user, attrs.namespace, errors)) {
      if (applied.rules.some((r) => ruleAllows(attrs, r))) {
        return { allowed: true, reason: `RBAC: allowed by ${applied.description}` };
      }
    }
    return {
      allowed: false,
      reason: errors.length > 0 ? `RBAC: ${errors.length === 1 ? errors[0] : `[${errors.join(", ")}]`}` : "",
    };
  }

  /**
   * Every binding that names `user` and applies in `namespace` ("" = cluster scope only):
   * ClusterRoleBindings first, then the namespace's RoleBindings. A role that cannot be found
   * is reported into `errors` and skipped.
   */
  async *bindingsFor(user: UserInfo, namespace: string, errors: string[]): AsyncGenerator<AppliedBinding> {
    for (const crb of await this.#source.clusterRoleBindings()) {
      const ref = roleRefOf(crb);
      const subject = subjectsOf(crb).find((s) => subjectMatches(s, user, ""));
      if (!subject || ref.kind !== "ClusterRole") continue;
      const rules = await this.#clusterRoleRules(ref.name, errors);
      if (!rules) continue;
      yield {
        description: `ClusterRoleBinding ${JSON.stringify(crb.metadata.name)} of ClusterRole ${JSON.stringify(ref.name)} to ${describeSubject(subject, "")}`,
        rules,
      };
    }
    if (!namespace) return;
    for (const rb of await this.#source.roleBindings(namespace)) {
      const ref = roleRefOf(rb);
      const subject = subjectsOf(rb).find((s) => subjectMatches(s, user, namespace));
      if (!subject) continue;
      let rules: PolicyRule[] | undefined;
      if (ref.kind === "ClusterRole") rules = await this.#clusterRoleRules(ref.name, errors);
      else if (ref.kind === "Role") {
        const role = await this.#source.role(namespace, ref.name);
        if (role) rules = rulesOf(role);
        else errors.push(`role.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found`);
      }
      if (!rules) continue;
      yield {
        description: `RoleBinding ${JSON.stringify(`${rb.metadata.name}/${namespace}`)} of ${ref.kind} ${JSON.stringify(ref.name)} to ${describeSubject(subject, namespace)}`,
        rules,
      };
    }
  }

  /** A ClusterRole's rules; for an aggregated role, the rules of every ClusterRole its selectors pick. */
  async #clusterRoleRules(name: string, errors: string[]): Promise<PolicyRule[] | undefined> {
    const role = await this.#source.clusterRole(name);
    if (!role) {
      errors.push(`clusterrole.rbac.authorization.k8s.io ${JSON.stringify(name)} not found`);
      return undefined;
    }
    const aggregation = role.aggregationRule as { clusterRoleSelectors?: unknown[] } | undefined;
    const selectors = (aggregation?.clusterRoleSelectors ?? []).map(asLabelSelector).filter((s) => s !== undefined);
    if (selectors.length === 0) return rulesOf(role);
    // The aggregation controller would copy these rules into the role; reading them live gives the same answer.
    const picked = (await this.#source.clusterRoles()).filter(
      (r) => r.metadata.name !== name && selectors.some((s) => matchLabelSelector(s, r.metadata.labels)),
    );
    return [...rulesOf(role), ...picked.flatMap(rulesOf)];
  }
}

const rbacGroup = "rbac.authorization.k8s.io";
const bootstrapMeta = (name: string) => ({
  name,
  labels: { "kubernetes.io/bootstrapping": "rbac-defaults" },
  annotations: { "rbac.authorization.kubernetes.io/autoupdate": "true" },
});

function clusterRole(name: string, rules: PolicyRule[]): KubeObject {
  return { apiVersion: `${rbacGroup}/v1`, kind: "ClusterRole", metadata: bootstrapMeta(name), rules };
}

function groupBinding(name: string, groups: string[]): KubeObject {
  return {
    apiVersion: `${rbacGroup}/v1`,
    kind: "ClusterRoleBinding",
    metadata: bootstrapMeta(name),
    roleRef: { apiGroup: rbacGroup, kind: "ClusterRole", name },
    subjects: groups.map((g) => ({ apiGroup: rbacGroup, kind: "Group", name: g })),
  };
}

/**
 * The RBAC objects kube-apiserver creates at first start: cluster-admin (bound to
 * system:masters) and the discovery, basic-user and public-info-viewer roles every
 * authenticated user has. ClusterRoles come before the bindings that name them.
 */
export function bootstrapRbacObjects(): KubeObject[] {
  const publicInfo = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
  return [
    clusterRole("cluster-admin", [
      { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
      { nonResourceURLs: ["*"], verbs: ["*"] },
    ]),
    clusterRole("system:discovery", [
      {
        nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", ...publicInfo].sort(),
        verbs: ["get"],
      },
    ]),
    clusterRole("system:basic-user", [
      {
        apiGroups: ["authorization.k8s.io"],
        resources: ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        verbs: ["create"],
      },
      { apiGroups: ["authentication.k8s.io"], resources: ["selfsubjectreviews"], verbs: ["create"] },
    ]),
    clusterRole("system:public-info-viewer", [{ nonResourceURLs: publicInfo, verbs: ["get"] }]),
    groupBinding("cluster-admin", [superuserGroup]),
    groupBinding("system:discovery", ["system:authenticated"]),
    groupBinding("system:basic-user", ["system:authenticated"]),
    groupBinding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
  ];
}

/** An RbacSource served from watched mirrors of the four RBAC collections. */
export interface WatchedRbacSource extends RbacSource {
  /** Starts the list/watch loops; until each has synced, its reads go to the API directly. */
  start(signal: AbortSignal): void;
  hasSynced(): boolean;
  whenSynced(): Promise<void>;
  /** Resolves after the next change to any of the mirrored collections has been applied. */
  nextChange(): Promise<void>;
}

/**
 * RBAC objects mirrored by list+watch (cheap decisions), falling back to live reads until
 * synced. A binding written a moment ago is seen once its watch event arrives, which in one
 * process is before any later request is read; Kubernetes' own authorizer lags the same way.
 */
export function watchedRbacSource(client: ApiClient, log?: Logger): WatchedRbacSource {
  const live = liveRbacSource(client);
  const mirror = (ref: ResourceRef) => new WatchedCollection({ client, ref, ...(log ? { log } : {}) });
  const crbs = mirror(Resources.clusterrolebindings);
  const rbs = mirror(Resources.rolebindings);
  const crs = mirror(Resources.clusterroles);
  const roles = mirror(Resources.roles);
  const all = [crbs, rbs, crs, roles];
  return {
    start: (signal) => {
      for (const c of all) c.start(signal);
    },
    hasSynced: () => all.every((c) => c.hasSynced()),
    whenSynced: async () => {
      await Promise.all(all.map((c) => c.whenSynced()));
    },
    nextChange: () => Promise.race(all.map((c) => c.nextChange())),
    clusterRoleBindings: async () => (crbs.hasSynced() ? crbs.items() : live.clusterRoleBindings()),
    roleBindings: async (ns) => (rbs.hasSynced() ? rbs.items(ns) : live.roleBindings(ns)),
    clusterRoles: async () => (crs.hasSynced() ? crs.items() : live.clusterRoles()),
    clusterRole: async (name) => (crs.hasSynced() ? crs.get(undefined, name) : live.clusterRole(name)),
    role: async (ns, name) => (roles.hasSynced() ? roles.get(ns, name) : live.role(ns, name)),
  };
}
