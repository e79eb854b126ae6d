/**
 * Server-side printing: the `meta.k8s.io` Table answers `kubectl get` asks for, with kubectl's
 * columns per kind (pods, services, deployments, ...) and NAME/AGE for everything else,
 * custom resources included. Pure: `now` is passed in.
 */
import type { KubeObject } from "../../api/types.js";

export interface TableColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  kind: "Table";
  apiVersion: string;
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: TableColumn[];
  rows: TableRow[];
}

/** What rows carry as `object` (the `includeObject` query parameter); Metadata is Kubernetes' default. */
export type IncludeObject = "None" | "Metadata" | "Object";

interface Printer {
  columns: TableColumn[];
  cells(obj: KubeObject, now: number): unknown[];
}

type Obj = Record<string, unknown>;

function rec(v: unknown): Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : "";
}
function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}
function orNone(s: string): string {
  return s === "" ? "<none>" : s;
}

/** Kubernetes' short human duration: "5s", "3m2s", "10m", "5h3m", "3d4h", "400d", "2y10d". */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (days < 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (days < 365 * 8) {
    const d = days % 365;
    return d === 0 ? `${years}y` : `${years}y${d}d`;
  }
  return `${years}y`;
}

function age(ts: unknown, now: number): string {
  const t = Date.parse(str(ts));
  return Number.isNaN(t) ? "<unknown>" : humanDuration(now - t);
}

function col(name: string, description: string, priority = 0, type: TableColumn["type"] = "string"): TableColumn {
  return { name, type, format: name === "Name" ? "name" : "", description, priority };
}

const nameCol = col(
  "Name",
  "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.",
);
const ageCol = col(
  "Age",
  "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

function labelsString(m: unknown): string {
  const entries = Object.entries(rec(m))
    .map(([k, v]) => `${k}=${str(v)}`)
    .sort();
  return entries.join(",");
}

function selectorString(sel: unknown): string {
  const s = rec(sel);
  const parts = Object.entries(rec(s.matchLabels)).map(([k, v]) => `${k}=${str(v)}`);
  for (const e of arr(s.matchExpressions)) {
    const x = rec(e);
    const values = arr(x.values).map(str).join(",");
    const key = str(x.key);
    switch (str(x.operator)) {
      case "In":
        parts.push(`${key} in (${values})`);
        break;
      case "NotIn":
        parts.push(`${key} notin (${values})`);
        break;
      case "Exists":
        parts.push(key);
        break;
      case "DoesNotExist":
        parts.push(`!${key}`);
        break;
    }
  }
  return parts.join(",");
}

/** kubectl's pod STATUS column: waiting/terminated reasons, Init:x/y, Terminating, else the phase. */
export function podStatusReason(pod: KubeObject): {
  reason: string;
  ready: number;
  total: number;
  restarts: number;
  lastRestart?: string;
} {
  const spec = rec(pod.spec);
  const status = rec(pod.status);
  const total = arr(spec.containers).length;
  let reason = str(status.reason) || str(status.phase) || "Pending";
  let restarts = 0;
  let ready = 0;
  let lastRestart: string | undefined;
  const noteRestart = (cs: Obj) => {
    const finished = str(rec(rec(cs.lastState).terminated).finishedAt);
    if (finished && (lastRestart === undefined || finished > lastRestart)) lastRestart = finished;
  };
  let initializing = false;
  const initStatuses = arr(status.initContainerStatuses).map(rec);
  const initCount = arr(spec.initContainers).length;
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i] ?? {};
    restarts += num(cs.restartCount);
    if (num(cs.restartCount) > 0) noteRestart(cs);
    const state = rec(cs.state);
    const term = rec(state.terminated);
    const wait = rec(state.waiting);
    if (state.terminated !== undefined && num(term.exitCode) === 0) continue;
    if (state.terminated !== undefined) {
      reason = str(term.reason)
        ? `Init:${str(term.reason)}`
        : num(term.signal) !== 0
          ? `Init:Signal:${num(term.signal)}`
          : `Init:ExitCode:${num(term.exitCode)}`;
    } else if (str(wait.reason) && str(wait.reason) !== "PodInitializing") {
      reason = `Init:${str(wait.reason)}`;
    } else {
      reason = `Init:${i}/${initCount}`;
    }
    initializing = true;
    break;
  }
  if (!initializing) {
    let hasRunning = false;
    const statuses = arr(status.containerStatuses).map(rec);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i] ?? {};
      restarts += num(cs.restartCount);
      if (num(cs.restartCount) > 0) noteRestart(cs);
      const state = rec(cs.state);
      const term = rec(state.terminated);
      const wait = rec(state.waiting);
      if (str(wait.reason)) {
        reason = str(wait.reason);
      } else if (state.terminated !== undefined && str(term.reason)) {
        reason = str(term.reason);
      } else if (state.terminated !== undefined) {
        reason = num(term.signal) !== 0 ? `Signal:${num(term.signal)}` : `ExitCode:${num(term.exitCode)}`;
      } else if (cs.ready === true && state.running !== undefined) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === "Completed" && hasRunning) {
      const readyCond = arr(status.conditions)
        .map(rec)
        .find((c) => c.type === "Ready");
      reason = readyCond && readyCond.status === "True" ? "Running" : "NotReady";
    }
  }
  if (pod.metadata.deletionTimestamp) reason = str(status.reason) === "NodeLost" ? "Unknown" : "Terminating";
  return { reason, ready, total, restarts, ...(lastRestart !== undefined ? { lastRestart } : {}) };
}

/**
 * A printer with kubectl's usual row: NAME, the kind's own `columns`, AGE, then the `afterAge`
 * columns (mostly the `-o wide` ones). `cells` gives the kind's own cells followed by the after-AGE ones.
 */
function namedPrinter(p: {
  columns: TableColumn[];
  afterAge?: TableColumn[];
  cells(obj: KubeObject, now: number): unknown[];
}): Printer {
  const own = p.columns.length;
  return {
    columns: [nameCol, ...p.columns, ageCol, ...(p.afterAge ?? [])],
    cells(obj, now) {
      const cells = p.cells(obj, now);
      return [
        obj.metadata.name ?? "",
        ...cells.slice(0, own),
        age(obj.metadata.creationTimestamp, now),
        ...cells.slice(own),
      ];
    },
  };
}

const podPrinter = namedPrinter({
  columns: [
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col(
      "Restarts",
      "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
  ],
  afterAge: [
    col("IP", "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
    col("Node", "NodeName is a request to schedule this pod onto a specific node.", 1),
    col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
    col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
  ],
  cells(pod, now) {
    const s = podStatusReason(pod);
    const restarts = s.lastRestart ? `${s.restarts} (${age(s.lastRestart, now)} ago)` : String(s.restarts);
    const status = rec(pod.status);
    const gates = arr(rec(pod.spec).readinessGates).map(rec);
    const conds = arr(status.conditions).map(rec);
    const gatesCell =
      gates.length === 0
        ? "<none>"
        : `${gates.filter((g) => conds.some((c) => c.type === g.conditionType && c.status === "True")).length}/${gates.length}`;
    return [
      `${s.ready}/${s.total}`,
      s.reason,
      restarts,
      orNone(str(status.podIP)),
      orNone(str(rec(pod.spec).nodeName)),
      orNone(str(status.nominatedNodeName)),
      gatesCell,
    ];
  },
});

const servicePrinter = namedPrinter({
  columns: [
    col("Type", "type determines how the Service is exposed. Defaults to ClusterIP."),
    col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    col(
      "External-IP",
      "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    col("Port(s)", "The list of ports that are exposed by this service."),
  ],
  afterAge: [col("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1)],
  cells(svc) {
    const spec = rec(svc.spec);
    const type = str(spec.type) || "ClusterIP";
    let external: string;
    const externalIPs = arr(spec.externalIPs).map(str);
    if (type === "ExternalName") external = str(spec.externalName);
    else if (type === "LoadBalancer") {
      const ingress = arr(rec(rec(svc.status).loadBalancer).ingress)
        .map(rec)
        .map((i) => str(i.ip) || str(i.hostname))
        .filter((x) => x !== "");
      const all = [...ingress, ...externalIPs];
      external = all.length > 0 ? all.join(",") : "<pending>";
    } else external = externalIPs.length > 0 ? externalIPs.join(",") : "<none>";
    const ports = arr(spec.ports)
      .map(rec)
      .map((p) => `${num(p.port)}${p.nodePort ? `:${num(p.nodePort)}` : ""}/${str(p.protocol) || "TCP"}`)
      .join(",");
    return [type, orNone(str(spec.clusterIP)), external, orNone(ports), orNone(labelsString(spec.selector))];
  },
});

/**
 * Deployments and ReplicaSets: their replica counts (from the status and the desired count, 1 when
 * unset), then the pod template's containers, images and the selector as wide columns.
 */
function workloadPrinter(columns: TableColumn[], counts: (status: Obj, desired: number) => unknown[]): Printer {
  return namedPrinter({
    columns,
    afterAge: [
      col("Containers", "Names of each container in the template.", 1),
      col("Images", "Images referenced by each container in the template.", 1),
      col("Selector", "Label selector for pods.", 1),
    ],
    cells(o) {
      const spec = rec(o.spec);
      const desired = spec.replicas === undefined ? 1 : num(spec.replicas);
      const containers = arr(rec(rec(spec.template).spec).containers).map(rec);
      return [
        ...counts(rec(o.status), desired),
        containers.map((c) => str(c.name)).join(","),
        containers.map((c) => str(c.image)).join(","),
        orNone(selectorString(spec.selector)),
      ];
    },
  });
}

const deploymentPrinter = workloadPrinter(
  [
    col("Ready", "Number of the pod with ready state"),
    col(
      "Up-to-date",
      "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
      0,
      "integer",
    ),
    col(
      "Available",
      "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
      0,
      "integer",
    ),
  ],
  (status, desired) => [
    `${num(status.readyReplicas)}/${desired}`,
    num(status.updatedReplicas),
    num(status.availableReplicas),
  ],
);

const replicaSetPrinter = workloadPrinter(
  [
    col("Desired", "Replicas is the number of desired replicas.", 0, "integer"),
    col("Current", "Replicas is the most recently observed number of replicas.", 0, "integer"),
    col("Ready", "The number of ready replicas for this replica set.", 0, "integer"),
  ],
  (status, desired) => [desired, num(status.replicas), num(status.readyReplicas)],
);

const namespacePrinter = namedPrinter({
  columns: [col("Status", "The status of the namespace")],
  cells: (ns) => [str(rec(ns.status).phase) || "Active"],
});

const nodePrinter = namedPrinter({
  columns: [col("Status", "The status of the node"), col("Roles", "The roles of the node")],
  afterAge: [
    col("Version", "Kubelet Version reported by the node."),
    col("Internal-IP", "List of addresses reachable to the node. Queried from cloud provider, if available.", 1),
    col("External-IP", "List of addresses reachable to the node. Queried from cloud provider, if available.", 1),
    col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    col(
      "Container-Runtime",
      "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
      1,
    ),
  ],
  cells(node) {
    const status = rec(node.status);
    const ready = arr(status.conditions)
      .map(rec)
      .find((c) => c.type === "Ready");
    let state = ready === undefined ? "Unknown" : ready.status === "True" ? "Ready" : "NotReady";
    if (rec(node.spec).unschedulable === true) state += ",SchedulingDisabled";
    const roles = Object.keys(node.metadata.labels ?? {})
      .filter((k) => k.startsWith("node-role.kubernetes.io/"))
      .map((k) => k.slice("node-role.kubernetes.io/".length))
      .filter((r) => r !== "")
      .sort();
    const addresses = arr(status.addresses).map(rec);
    const addr = (t: string) =>
      orNone(
        addresses
          .filter((a) => a.type === t)
          .map((a) => str(a.address))
          .join(","),
      );
    const info = rec(status.nodeInfo);
    return [
      state,
      orNone(roles.join(",")),
      str(info.kubeletVersion),
      addr("InternalIP"),
      addr("ExternalIP"),
      orNone(str(info.osImage)),
      orNone(str(info.kernelVersion)),
      orNone(str(info.containerRuntimeVersion)),
    ];
  },
});

function firstN(list: string[], n: number): string {
  if (list.length === 0) return "<none>";
  if (list.length <= n) return list.join(",");
  return `${list.slice(0, n).join(",")} + ${list.length - n} more...`;
}

const endpointSlicePrinter = namedPrinter({
  columns: [
    col("AddressType", "The IP protocol for this slice"),
    col("Ports", "The ports used by this slice"),
    col("Endpoints", "The endpoints for this slice"),
  ],
  cells(s) {
    const ports = arr(s.ports)
      .map(rec)
      .map((p) => (p.port === undefined ? "" : String(num(p.port))))
      .filter((p) => p !== "");
    const addresses = arr(s.endpoints).flatMap((e) => arr(rec(e).addresses).map(str));
    return [
      str(s.addressType),
      ports.length > 0 ? ports.join(",") : "<unset>",
      addresses.length > 0 ? firstN(addresses, 3) : "<unset>",
    ];
  },
});

const endpointsPrinter = namedPrinter({
  columns: [col("Endpoints", "Endpoints of the service")],
  cells(e) {
    const list: string[] = [];
    for (const subset of arr(e.subsets).map(rec)) {
      const ports = arr(subset.ports).map((p) => num(rec(p).port));
      for (const a of arr(subset.addresses).map(rec)) {
        if (ports.length === 0) list.push(str(a.ip));
        for (const p of ports) list.push(`${str(a.ip)}:${p}`);
      }
    }
    return [firstN(list, 3)];
  },
});

const secretPrinter = namedPrinter({
  columns: [col("Type", "The type of the secret"), col("Data", "The number of entries in the secret", 0, "integer")],
  cells: (s) => [str(s.type) || "Opaque", Object.keys(rec(s.data)).length],
});

const configMapPrinter = namedPrinter({
  columns: [col("Data", "The number of entries in the config map", 0, "integer")],
  cells: (c) => [Object.keys(rec(c.data)).length + Object.keys(rec(c.binaryData)).length],
});

const serviceAccountPrinter = namedPrinter({
  columns: [col("Secrets", "The number of secrets of the service account", 0, "integer")],
  cells: (sa) => [arr(sa.secrets).length],
});

const eventPrinter: Printer = {
  columns: [
    col("Last Seen", "Time when this event was last observed."),
    col("Type", "Type of this event (Normal, Warning)."),
    col(
      "Reason",
      "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "The object that this event is about."),
    col("Message", "A human-readable description of the status of this operation."),
    col("Subobject", "The field of the object the event is about.", 1),
    col("Source", "The component reporting this event.", 1),
    col("First Seen", "The time at which the event was first recorded.", 1),
    col("Count", "The number of times this event has occurred.", 1, "integer"),
    col("Name", "Name of the event.", 1),
  ],
  cells(e, now) {
    const inv = rec(e.involvedObject);
    const last = str(e.lastTimestamp) || str(e.eventTime) || str(e.metadata.creationTimestamp);
    const first = str(e.firstTimestamp) || str(e.eventTime) || str(e.metadata.creationTimestamp);
    const source = rec(e.source);
    return [
      age(last, now),
      str(e.type),
      str(e.reason),
      `${str(inv.kind).toLowerCase()}/${str(inv.name)}`,
      str(e.message).trim(),
      str(inv.fieldPath),
      orNone([str(source.component), str(source.host)].filter((x) => x !== "").join(", ") || str(e.reportingComponent)),
      age(first, now),
      e.count === undefined ? 1 : num(e.count),
      e.metadata.name ?? "",
    ];
  },
};

const leasePrinter = namedPrinter({
  columns: [col("Holder", "The holder of the lease")],
  cells: (l) => [str(rec(l.spec).holderIdentity)],
});

const roleBindingPrinter = namedPrinter({
  columns: [col("Role", "The role referenced by this binding")],
  afterAge: [
    col("Users", "Users in the binding", 1),
    col("Groups", "Groups in the binding", 1),
    col("ServiceAccounts", "ServiceAccounts in the binding", 1),
  ],
  cells(b) {
    const ref = rec(b.roleRef);
    const subjects = arr(b.subjects).map(rec);
    const of = (k: string) =>
      subjects
        .filter((s) => s.kind === k)
        .map((s) => (k === "ServiceAccount" ? `${str(s.namespace)}/${str(s.name)}` : str(s.name)))
        .join(", ");
    return [`${str(ref.kind)}/${str(ref.name)}`, of("User"), of("Group"), of("ServiceAccount")];
  },
});

const webhookConfigurationPrinter = namedPrinter({
  columns: [col("Webhooks", "The number of webhooks", 0, "integer")],
  cells: (o) => [arr(o.webhooks).length],
});

const createdAtPrinter: Printer = {
  columns: [nameCol, { ...col("Created At", "CreationTimestamp of the object."), type: "date" }],
  cells(o) {
    return [o.metadata.name ?? "", str(o.metadata.creationTimestamp)];
  },
};

const defaultPrinter = namedPrinter({ columns: [], cells: () => [] });

const printers: Record<string, Printer> = {
  "/pods": podPrinter,
  "/services": servicePrinter,
  "apps/deployments": deploymentPrinter,
  "apps/replicasets": replicaSetPrinter,
  "/namespaces": namespacePrinter,
  "/nodes": nodePrinter,
  "discovery.k8s.io/endpointslices": endpointSlicePrinter,
  "/endpoints": endpointsPrinter,
  "/secrets": secretPrinter,
  "/configmaps": configMapPrinter,
  "/serviceaccounts": serviceAccountPrinter,
  "/events": eventPrinter,
  "events.k8s.io/events": eventPrinter,
  "coordination.k8s.io/leases": leasePrinter,
  "rbac.authorization.k8s.io/roles": createdAtPrinter,
  "rbac.authorization.k8s.io/clusterroles": createdAtPrinter,
  "rbac.authorization.k8s.io/rolebindings": roleBindingPrinter,
  "rbac.authorization.k8s.io/clusterrolebindings": roleBindingPrinter,
  "apiextensions.k8s.io/customresourcedefinitions": createdAtPrinter,
  "admissionregistration.k8s.io/mutatingwebhookconfigurations": webhookConfigurationPrinter,
  "admissionregistration.k8s.io/validatingwebhookconfigurations": webhookConfigurationPrinter,
};

/** A CRD version's additionalPrinterColumns entry. */
export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

/** Reads a simple `.a.b[0].c` JSONPath (what printer columns use in practice). */
function readPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  const steps = path.replace(/^\./, "").match(/[^.[\]]+|\[\d+\]/g) ?? [];
  for (const s of steps) {
    if (s.startsWith("[")) cur = arr(cur)[Number(s.slice(1, -1))];
    else cur = rec(cur)[s];
    if (cur === undefined) return undefined;
  }
  return cur;
}

function printerFromColumns(columns: readonly PrinterColumn[]): Printer {
  return {
    columns: [
      nameCol,
      ...columns.map((c) => ({
        name: c.name,
        type: (["integer", "number", "boolean", "date"].includes(c.type) ? c.type : "string") as TableColumn["type"],
        format: c.format ?? "",
        description: c.description ?? "",
        priority: c.priority ?? 0,
      })),
    ],
    cells(o, now) {
      return [
        o.metadata.name ?? "",
        ...columns.map((c) => {
          const v = readPath(o, c.jsonPath);
          if (c.type === "date") return v === undefined ? "<unknown>" : age(v, now);
          if (v === undefined || v === null) return "<none>";
          return typeof v === "object" ? JSON.stringify(v) : v;
        }),
      ];
    },
  };
}

export interface ToTableOptions {
  group: string;
  resource: string;
  tableVersion: "v1" | "v1beta1";
  includeObject: IncludeObject;
  resourceVersion?: string;
  continue?: string;
  now: number;
  /** For custom resources: the CRD version's additionalPrinterColumns (NAME plus these; else NAME AGE). */
  printerColumns?: readonly PrinterColumn[];
}

/** Renders objects of one resource as a Table. */
export function toTable(objects: readonly KubeObject[], opts: ToTableOptions): Table {
  const printer =
    printers[`${opts.group}/${opts.resource}`] ??
    (opts.printerColumns && opts.printerColumns.length > 0 ? printerFromColumns(opts.printerColumns) : defaultPrinter);
  const rows: TableRow[] = objects.map((o) => {
    const row: TableRow = { cells: printer.cells(o, opts.now) };
    if (opts.includeObject === "Object") row.object = o;
    else if (opts.includeObject === "Metadata")
      row.object = {
        kind: "PartialObjectMetadata",
        apiVersion: `meta.k8s.io/${opts.tableVersion}`,
        metadata: o.metadata,
      };
    return row;
  });
  const metadata: Table["metadata"] = {};
  if (opts.resourceVersion !== undefined) metadata.resourceVersion = opts.resourceVersion;
  if (opts.continue) metadata.continue = opts.continue;
  return {
    kind: "Table",
    apiVersion: `meta.k8s.io/${opts.tableVersion}`,
    metadata,
    columnDefinitions: printer.columns,
    rows,
  };
}
