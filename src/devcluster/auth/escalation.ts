/**
 * RBAC escalation prevention, as kube-apiserver's RBAC storage enforces it: a user may write a
 * Role/ClusterRole only with permissions they already hold (or with the `escalate` verb on it),
 * and a RoleBinding/ClusterRoleBinding only to a role whose permissions they hold (or with the
 * `bind` verb on it). Without this, anyone allowed to create RoleBindings could grant themselves
 * cluster-admin. Offered as an Admission to run before the webhooks (combineAdmission).
 */
import type { Admission, AdmissionAttributes } from "../api/plugins.js";
import { ApiError, type ApiClient, type KubeObject, Resources, type UserInfo } from "../api/types.js";
import { failureStatus, objectDetails } from "../apiserver/errors.js";
import { rec, str } from "./fields.js";
import { type PolicyRule, type RbacAuthorizer, rulesOf, superuserGroup } from "./rbac.js";

const rbacGroup = "rbac.authorization.k8s.io";

const has = (set: readonly string[] | undefined, v: string) => (set ?? []).includes(v);

/** True when `owner` grants everything `servant` grants (Kubernetes' rule coverage). */
export function ruleCovers(owner: PolicyRule, servant: PolicyRule): boolean {
  if (!has(owner.verbs, "*") && !servant.verbs.every((v) => has(owner.verbs, v))) return false;
  const urls = servant.nonResourceURLs ?? [];
  if (urls.length > 0) {
    return urls.every((u) =>
      (owner.nonResourceURLs ?? []).some(
        (o) => o === "*" || o === u || (o.endsWith("*") && u.startsWith(o.slice(0, -1))),
      ),
    );
  }
  if (!has(owner.apiGroups, "*") && !(servant.apiGroups ?? []).every((g) => has(owner.apiGroups, g))) return false;
  const resourcesOk = (servant.resources ?? []).every((r) => {
    if (has(owner.resources, "*") || has(owner.resources, r)) return true;
    const slash = r.indexOf("/");
    return slash > 0 && has(owner.resources, `*/${r.slice(slash + 1)}`);
  });
  if (!resourcesOk) return false;
  const ownerNames = owner.resourceNames ?? [];
  if (ownerNames.length === 0) return true;
  const servantNames = servant.resourceNames ?? [];
  return servantNames.length > 0 && servantNames.every((n) => ownerNames.includes(n));
}

/** Breaks a rule into one-verb, one-group, one-resource (or one-URL) rules, as coverage is judged per atom. */
function atoms(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const verb of rule.verbs) {
    for (const url of rule.nonResourceURLs ?? []) out.push({ verbs: [verb], nonResourceURLs: [url] });
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        const names = rule.resourceNames ?? [];
        out.push({ verbs: [verb], apiGroups: [group], resources: [resource], resourceNames: names });
      }
    }
  }
  return out;
}

/** The rules of `wanted` that none of `held` covers, one atom each (empty: no escalation). */
export function uncoveredRules(held: readonly PolicyRule[], wanted: readonly PolicyRule[]): PolicyRule[] {
  return wanted.flatMap(atoms).filter((a) => !held.some((h) => ruleCovers(h, a)));
}

function describeRule(r: PolicyRule): string {
  if ((r.nonResourceURLs ?? []).length > 0) {
    return `{NonResourceURLs:${JSON.stringify(r.nonResourceURLs)}, Verbs:${JSON.stringify(r.verbs)}}`;
  }
  const names = (r.resourceNames ?? []).length > 0 ? `, ResourceNames:${JSON.stringify(r.resourceNames)}` : "";
  return `{APIGroups:${JSON.stringify(r.apiGroups)}, Resources:${JSON.stringify(r.resources)}${names}, Verbs:${JSON.stringify(r.verbs)}}`;
}

export interface RbacEscalationOptions {
  authorizer: RbacAuthorizer;
  /** Users trusted to write any RBAC object besides system:masters (e.g. the in-process controller user). */
  privilegedUsers?: string[];
}

/** Admission that refuses RBAC writes granting more than the writer holds. `mutate` changes nothing. */
export class RbacEscalationAdmission implements Admission {
  readonly #authorizer: RbacAuthorizer;
  readonly #privileged: ReadonlySet<string>;

  constructor(opts: RbacEscalationOptions) {
    this.#authorizer = opts.authorizer;
    this.#privileged = new Set(opts.privilegedUsers ?? []);
  }

  async mutate(attrs: AdmissionAttributes): Promise<KubeObject | undefined> {
    return attrs.object;
  }

  async validate(attrs: AdmissionAttributes, client: ApiClient): Promise<void> {
    if (attrs.ref.group !== rbacGroup || attrs.subresource !== "" || !attrs.object) return;
    if (attrs.operation !== "CREATE" && attrs.operation !== "UPDATE") return;
    const user = attrs.user;
    if (user.groups.includes(superuserGroup) || this.#privileged.has(user.username)) return;
    const obj = attrs.object;
    const namespace = obj.metadata.namespace ?? "";
    switch (attrs.ref.resource) {
      case "roles":
      case "clusterroles": {
        if (await this.#allowedVerb(user, "escalate", attrs.ref.resource, namespace, obj.metadata.name ?? "")) return;
        await this.#requireCovered(user, namespace, rulesOf(obj), attrs);
        return;
      }
      case "rolebindings":
      case "clusterrolebindings": {
        const ref = rec(obj.roleRef);
        const kind = str(ref.kind);
        const name = str(ref.name);
        const resource = kind === "ClusterRole" ? "clusterroles" : "roles";
        // For a RoleBinding, `bind` (even on a ClusterRole) is checked in the binding's namespace.
        if (await this.#allowedVerb(user, "bind", resource, namespace, name)) return;
        let role: KubeObject | undefined;
        try {
          role =
            kind === "ClusterRole"
              ? await client.get(Resources.clusterroles, undefined, name)
              : await client.get(Resources.roles, namespace, name);
        } catch {
          role = undefined;
        }
        if (!role) {
          // Its rules cannot be compared with the writer's: only `bind` (checked above) allows it.
          throw forbidden(
            attrs,
            `user ${JSON.stringify(user.username)} cannot bind to ${kind} ${JSON.stringify(name)}: it does not exist`,
          );
        }
        await this.#requireCovered(user, namespace, rulesOf(role), attrs);
        return;
      }
    }
  }

  async #allowedVerb(
    user: UserInfo,
    verb: string,
    resource: string,
    namespace: string,
    name: string,
  ): Promise<boolean> {
    const d = await this.#authorizer.authorize({
      user,
      verb,
      resourceRequest: true,
      path: "",
      apiGroup: rbacGroup,
      apiVersion: "v1",
      resource,
      subresource: "",
      namespace,
      name,
    });
    return d.allowed;
  }

  async #requireCovered(user: UserInfo, namespace: string, wanted: PolicyRule[], attrs: AdmissionAttributes) {
    const held: PolicyRule[] = [];
    for await (const b of this.#authorizer.bindingsFor(user, namespace, [])) held.push(...b.rules);
    const missing = uncoveredRules(held, wanted);
    if (missing.length === 0) return;
    throw forbidden(
      attrs,
      `user ${JSON.stringify(user.username)} (groups=${JSON.stringify(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${missing.map(describeRule).join("\n")}`,
    );
  }
}

function forbidden(attrs: AdmissionAttributes, why: string): ApiError {
  const message = `${attrs.ref.resource}.${rbacGroup} ${JSON.stringify(attrs.name)} is forbidden: ${why}`;
  return new ApiError(
    failureStatus(403, "Forbidden", message, objectDetails(rbacGroup, attrs.ref.resource, attrs.name)),
  );
}

/** Runs admissions in order: every mutate in turn (each seeing the last result), then every validate. */
export function combineAdmission(...admissions: Admission[]): Admission {
  return {
    async mutate(attrs, client) {
      let current = attrs;
      for (const a of admissions) {
        const out = await a.mutate(current, client);
        if (out) current = { ...current, object: out };
      }
      return current.object;
    },
    async validate(attrs, client) {
      for (const a of admissions) await a.validate(attrs, client);
    },
  };
}
