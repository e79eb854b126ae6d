/**
 * One pod's life on the node: network namespace, volumes, init containers in order, then the
 * containers with restarts and back-off, probes, status (phase, conditions, container states)
 * and, on deletion, SIGTERM → grace → SIGKILL → teardown → final delete.
 */
import type { ChildProcess } from "node:child_process";
import { setMaxListeners } from "node:events";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage, type Logger, sleep } from "../../base/index.js";
import type { ApiClient, KubeObject } from "../api/types.js";
import { isApiError, Resources } from "../api/types.js";
import type { PodNetwork, PodNetworks } from "../network/index.js";
import { type CatalogueContext, resolveImage, unknownImageMessage } from "./catalogue.js";
import {
  containerEnv,
  expandVars,
  materializeVolumes,
  PrepareError,
  type ProjectedToken,
  writeToken,
} from "./materialize.js";
import type {
  Container,
  ContainerState,
  ContainerStatus,
  PodCondition,
  PodSpec,
  PodStatus,
  Probe,
} from "./pod-types.js";
import { runProbe } from "./probes.js";
import { launch, type Mount, signalGroup } from "./process.js";

/** What a worker needs from its node. */
export interface WorkerContext {
  readonly client: ApiClient;
  readonly nodeName: string;
  readonly hostIP: string;
  readonly networks: PodNetworks;
  readonly catalogue: CatalogueContext;
  readonly stateDir: string;
  readonly apiServer: { host: string; port: number };
  readonly nodeCapacity: { cpu: string; memory: string };
  readonly log: Logger;
  /** Back-off of restarts and image pulls: first delay and cap, ms (10 s and 300 s in Kubernetes). */
  readonly backoff: { initialMs: number; maxMs: number };
  event(pod: KubeObject, type: "Normal" | "Warning", reason: string, message: string, fieldPath?: string): void;
}

/** A running container process, for exec and logs. */
export interface RunningContainer {
  readonly pid: number;
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly security?: Container["securityContext"];
  readonly netns: string;
}

interface ContainerRun {
  readonly spec: Container;
  readonly init: boolean;
  state: ContainerState;
  lastState: ContainerState | Record<string, never>;
  restartCount: number;
  ready: boolean;
  started: boolean;
  child?: ChildProcess;
  running?: RunningContainer;
  containerID?: string;
  exited?: Promise<{ code: number; signal: NodeJS.Signals | null }>;
}

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
const signalNumbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGABRT: 6,
  SIGSEGV: 11,
};

export class PodWorker {
  pod: KubeObject;
  readonly uid: string;
  readonly #ctx: WorkerContext;
  readonly #log: Logger;
  readonly #ac = new AbortController();
  readonly #runs = new Map<string, ContainerRun>();
  readonly #conditionTimes = new Map<string, { status: string; time: string }>();
  #net: PodNetwork | undefined;
  #phase: PodStatus["phase"] = "Pending";
  #startTime: string | undefined;
  #initialized = false;
  #terminating: Promise<void> | undefined;
  #lastWritten = "";
  #writing: Promise<void> = Promise.resolve();
  #writeQueued = false;
  #tokenTimers: NodeJS.Timeout[] = [];
  #podMessage: { reason: string; message: string } | undefined;

  constructor(ctx: WorkerContext, pod: KubeObject) {
    this.#ctx = ctx;
    this.pod = pod;
    this.uid = pod.metadata.uid ?? "";
    this.#log = ctx.log.child(`pod/${pod.metadata.namespace}/${pod.metadata.name}`);
    // One listener per container loop, probe loop and sleep: more than the default 10 is normal.
    setMaxListeners(0, this.#ac.signal);
    const spec = this.#spec;
    for (const c of spec.initContainers ?? []) this.#runs.set(`init:${c.name}`, this.#newRun(c, true));
    for (const c of spec.containers) this.#runs.set(c.name, this.#newRun(c, false));
  }

  #newRun(spec: Container, init: boolean): ContainerRun {
    const hasInit = (this.#spec.initContainers ?? []).length > 0;
    return {
      spec,
      init,
      state: { waiting: { reason: !init && hasInit ? "PodInitializing" : "ContainerCreating" } },
      lastState: {},
      restartCount: 0,
      ready: false,
      started: false,
    };
  }

  get #spec(): PodSpec {
    return this.pod.spec as PodSpec;
  }

  /** The pod's folder: volumes and logs. Removed when the pod goes. */
  get dir(): string {
    return join(this.#ctx.stateDir, "pods", `${this.pod.metadata.namespace}_${this.pod.metadata.name}_${this.uid}`);
  }

  /** Log files of a container: the current run and the one before. */
  logFiles(container: string): { current: string; previous: string } {
    const d = join(this.dir, "logs");
    return { current: join(d, `${container}.log`), previous: join(d, `${container}.previous.log`) };
  }

  get podIP(): string | undefined {
    return this.#net?.ip;
  }

  get netns(): string | undefined {
    return this.#net?.netns;
  }

  /** Names of the pod's containers (regular first, then init). */
  containerNames(): string[] {
    return [...this.#spec.containers.map((c) => c.name), ...(this.#spec.initContainers ?? []).map((c) => c.name)];
  }

  /** The running process of a container (regular or init), or undefined. */
  running(container: string): RunningContainer | undefined {
    return (this.#runs.get(container) ?? this.#runs.get(`init:${container}`))?.running;
  }

  /** True while the container could still produce log output (running or about to restart). */
  mayLogMore(container: string): boolean {
    const r = this.#runs.get(container) ?? this.#runs.get(`init:${container}`);
    return r !== undefined && !this.#ac.signal.aborted && !("terminated" in r.state);
  }

  get stopped(): boolean {
    return this.#ac.signal.aborted;
  }

  /** Starts the pod; resolves when its containers finished for good or the pod is stopped. */
  async run(): Promise<void> {
    const signal = this.#ac.signal;
    try {
      mkdirSync(join(this.dir, "logs"), { recursive: true });
      await this.#retry("FailedCreatePodSandBox", async () => {
        this.#net = await this.#ctx.networks.setup({
          namespace: this.pod.metadata.namespace ?? "default",
          name: this.pod.metadata.name ?? "",
          hostname: this.#spec.hostname,
        });
      });
      this.#startTime = now();
      this.#changed();
      await this.#retry("FailedMount", async () => {
        const tokens = await materializeVolumes(this.#materializeCtx({}), join(this.dir, "volumes"));
        for (const t of tokens) this.#refreshToken(t);
      });
      for (const c of this.#spec.initContainers ?? []) {
        const run = this.#runs.get(`init:${c.name}`);
        if (!run) continue;
        if (c.restartPolicy === "Always") {
          // A native sidecar: it keeps running next to the containers.
          void this.#containerLoop(run);
          continue;
        }
        const ok = await this.#containerLoop(run);
        if (!ok || signal.aborted) return;
      }
      this.#initialized = true;
      this.#changed();
      await Promise.all(
        this.#spec.containers.map((c) => {
          const run = this.#runs.get(c.name);
          return run ? this.#containerLoop(run) : Promise.resolve(true);
        }),
      );
    } catch (err) {
      if (!signal.aborted) this.#log.error("pod failed", { error: errorMessage(err) });
    }
  }

  async #retry(reason: string, fn: () => Promise<void>): Promise<void> {
    let delay = 1000;
    for (;;) {
      try {
        await fn();
        if (this.#podMessage?.reason === reason) this.#podMessage = undefined;
        return;
      } catch (err) {
        if (this.#ac.signal.aborted) throw err;
        const message = errorMessage(err);
        this.#log.warn("pod setup step failed; retrying", { reason, error: message });
        this.#ctx.event(this.pod, "Warning", reason, message);
        this.#podMessage = { reason, message };
        this.#changed();
        await sleep(delay, this.#ac.signal);
        // Short cap: a ConfigMap a controller is about to create (istio-ca-root-cert) should not hold a pod for long.
        delay = Math.min(delay * 2, 8_000);
      }
    }
  }

  #materializeCtx(extra: Record<string, string>) {
    return {
      client: this.#ctx.client,
      pod: this.#podWithStatus(),
      nodeCapacity: this.#ctx.nodeCapacity,
      baseEnv: extra,
    };
  }

  /** The pod with the status fields fieldRefs read (podIP, hostIP) filled in from this worker. */
  #podWithStatus(): KubeObject {
    const ip = this.#net?.ip;
    return {
      ...this.pod,
      spec: { ...this.#spec, nodeName: this.#spec.nodeName ?? this.#ctx.nodeName },
      status: {
        ...((this.pod.status ?? {}) as object),
        hostIP: this.#ctx.hostIP,
        ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      },
    };
  }

  #refreshToken(t: ProjectedToken): void {
    // Refresh at 80% of the lifetime, as the kubelet does.
    const ms = Math.max(10_000, t.expirationSeconds * 800);
    const timer = setTimeout(async () => {
      if (this.#ac.signal.aborted) return;
      try {
        await writeToken(this.#materializeCtx({}), t);
      } catch (err) {
        this.#log.warn("token refresh failed", { error: errorMessage(err) });
      }
      this.#refreshToken(t);
    }, ms);
    timer.unref();
    this.#tokenTimers.push(timer);
  }

  #fieldPath(run: ContainerRun): string {
    return `spec.${run.init ? "initContainers" : "containers"}{${run.spec.name}}`;
  }

  /** Runs one container with restarts; resolves true when it ended successfully for good. */
  async #containerLoop(run: ContainerRun): Promise<boolean> {
    const signal = this.#ac.signal;
    const c = run.spec;
    // Init containers retry on failure unless the pod never restarts; native sidecars always restart.
    const podPolicy = this.#spec.restartPolicy ?? "Always";
    const policy = run.init
      ? c.restartPolicy === "Always"
        ? "Always"
        : podPolicy === "Never"
          ? "Never"
          : "OnFailure"
      : podPolicy;
    const neverStop = !run.init && policy === "Always";
    let backoff = this.#ctx.backoff.initialMs;
    while (!signal.aborted) {
      const launchSpec = resolveImage(c, this.#ctx.catalogue);
      if (!launchSpec) {
        const message = unknownImageMessage(c.image ?? "");
        run.state = { waiting: { reason: "ErrImagePull", message } };
        this.#ctx.event(this.pod, "Normal", "Pulling", `Pulling image "${c.image}"`, this.#fieldPath(run));
        this.#ctx.event(
          this.pod,
          "Warning",
          "Failed",
          `Failed to pull image "${c.image}": ${message}`,
          this.#fieldPath(run),
        );
        this.#ctx.event(this.pod, "Warning", "Failed", "Error: ErrImagePull", this.#fieldPath(run));
        this.#changed();
        try {
          await sleep(Math.min(backoff, 2_000), signal);
          run.state = {
            waiting: { reason: "ImagePullBackOff", message: `Back-off pulling image "${c.image}": ${message}` },
          };
          this.#ctx.event(this.pod, "Normal", "BackOff", `Back-off pulling image "${c.image}"`, this.#fieldPath(run));
          this.#changed();
          await sleep(backoff, signal);
        } catch {
          return false;
        }
        backoff = Math.min(backoff * 2, this.#ctx.backoff.maxMs);
        continue;
      }
      let env: Map<string, string>;
      try {
        env = await containerEnv(this.#materializeCtx(this.#baseEnv()), c);
      } catch (err) {
        const reason = err instanceof PrepareError ? err.reason : "CreateContainerConfigError";
        run.state = { waiting: { reason, message: errorMessage(err) } };
        this.#ctx.event(this.pod, "Warning", "Failed", `Error: ${errorMessage(err)}`, this.#fieldPath(run));
        this.#changed();
        try {
          await sleep(backoff, signal);
        } catch {
          return false;
        }
        backoff = Math.min(backoff * 2, this.#ctx.backoff.maxMs);
        continue;
      }
      const allEnv: Record<string, string> = { ...Object.fromEntries(env), ...launchSpec.env };
      const vars = new Map(Object.entries(allEnv));
      const argv = launchSpec.argv.map((a) => expandVars(a, vars));
      const files = this.logFiles(c.name);
      if (existsSync(files.current) && run.restartCount > 0) renameSync(files.current, files.previous);
      writeFileSync(files.current, "");
      const netns = this.#net?.netns ?? "";
      const started = Date.now();
      const child = launch({
        netns,
        argv,
        env: allEnv,
        mounts: this.#mounts(c),
        workingDir: c.workingDir,
        security: { ...(this.#spec.securityContext ?? {}), ...(c.securityContext ?? {}) },
        hostname: this.#spec.hostname ?? this.pod.metadata.name,
        logFile: files.current,
      });
      const containerID = `isthmus://${this.uid.slice(0, 8)}-${c.name}-${run.restartCount}`;
      run.child = child;
      run.containerID = containerID;
      run.exited = new Promise((resolve) => {
        child.once("exit", (code, sig) =>
          resolve({ code: code ?? 128 + (signalNumbers[sig ?? ""] ?? 0), signal: sig }),
        );
        child.once("error", (err) => {
          this.#log.warn("cannot start container", { container: c.name, error: errorMessage(err) });
          resolve({ code: 128, signal: null });
        });
      });
      if (child.pid !== undefined) {
        run.running = {
          pid: child.pid,
          env: allEnv,
          workingDir: c.workingDir,
          security: { ...(this.#spec.securityContext ?? {}), ...(c.securityContext ?? {}) },
          netns,
        };
      }
      const startedAt = now();
      run.state = { running: { startedAt } };
      run.started = !c.startupProbe;
      run.ready = !c.readinessProbe && run.started && !run.init;
      this.#ctx.event(this.pod, "Normal", "Created", `Created container ${c.name}`, this.#fieldPath(run));
      this.#ctx.event(this.pod, "Normal", "Started", `Started container ${c.name}`, this.#fieldPath(run));
      this.#changed();
      const probeAc = new AbortController();
      const onAbort = () => probeAc.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      if (!run.init) void this.#probeLoops(run, probeAc.signal);
      const { code } = await run.exited;
      probeAc.abort();
      signal.removeEventListener("abort", onAbort);
      run.running = undefined;
      run.child = undefined;
      run.ready = false;
      const terminated: ContainerState = {
        terminated: {
          exitCode: code,
          reason: code === 0 ? "Completed" : "Error",
          startedAt,
          finishedAt: now(),
          containerID,
        },
      };
      if (signal.aborted) {
        run.state = terminated;
        return false;
      }
      const restart = neverStop || (policy === "OnFailure" && code !== 0) || (run.init && policy === "Always");
      if (!restart) {
        run.state = terminated;
        this.#changed();
        return code === 0;
      }
      if (Date.now() - started > 10 * 60_000) backoff = this.#ctx.backoff.initialMs;
      run.lastState = terminated;
      run.restartCount++;
      run.state = {
        waiting: {
          reason: "CrashLoopBackOff",
          message: `back-off ${Math.round(backoff / 1000)}s restarting failed container=${c.name} pod=${this.pod.metadata.name}_${this.pod.metadata.namespace}(${this.uid})`,
        },
      };
      this.#ctx.event(this.pod, "Warning", "BackOff", "Back-off restarting failed container", this.#fieldPath(run));
      this.#changed();
      try {
        await sleep(backoff, signal);
      } catch {
        return false;
      }
      backoff = Math.min(backoff * 2, this.#ctx.backoff.maxMs);
    }
    return false;
  }

  #baseEnv(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/root",
      HOSTNAME: this.#spec.hostname ?? this.pod.metadata.name ?? "",
      KUBERNETES_SERVICE_HOST: this.#ctx.apiServer.host,
      KUBERNETES_SERVICE_PORT: String(this.#ctx.apiServer.port),
      KUBERNETES_SERVICE_PORT_HTTPS: String(this.#ctx.apiServer.port),
      KUBERNETES_PORT: `tcp://${this.#ctx.apiServer.host}:${this.#ctx.apiServer.port}`,
    };
  }

  #mounts(c: Container): Mount[] {
    const vols = new Map((this.#spec.volumes ?? []).map((v) => [v.name, v]));
    const out: Mount[] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = vols.get(m.name);
      if (!v) continue;
      const base = v.hostPath ? v.hostPath.path : join(this.dir, "volumes", v.name);
      out.push({
        source: m.subPath ? join(base, m.subPath) : base,
        target: m.mountPath,
        readOnly: m.readOnly === true,
      });
    }
    return out;
  }

  async #probeLoops(run: ContainerRun, signal: AbortSignal): Promise<void> {
    const c = run.spec;
    const namedPorts = Object.fromEntries((c.ports ?? []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
    const target = () => ({ podIP: this.#net?.ip ?? "", running: run.running, namedPorts });
    const loop = async (
      probe: Probe,
      kind: "startup" | "readiness" | "liveness",
      onResult: (ok: boolean, output: string) => boolean,
    ) => {
      const period = (probe.periodSeconds ?? 10) * 1000;
      const success = probe.successThreshold ?? 1;
      const failure = probe.failureThreshold ?? 3;
      let ok = 0;
      let bad = 0;
      try {
        await sleep((probe.initialDelaySeconds ?? 0) * 1000, signal);
        for (;;) {
          const r = await runProbe(probe, target(), signal);
          if (signal.aborted) return;
          if (r.ok) {
            ok++;
            bad = 0;
            if (ok >= success && onResult(true, r.output)) return;
          } else {
            bad++;
            ok = 0;
            this.#ctx.event(
              this.pod,
              "Warning",
              "Unhealthy",
              `${kind[0]?.toUpperCase()}${kind.slice(1)} probe failed: ${r.output}`,
              this.#fieldPath(run),
            );
            if (bad >= failure && onResult(false, r.output)) return;
          }
          await sleep(period, signal);
        }
      } catch {
        // aborted
      }
    };
    const kill = (why: string) => {
      this.#ctx.event(
        this.pod,
        "Normal",
        "Killing",
        `Container ${c.name} ${why}, will be restarted`,
        this.#fieldPath(run),
      );
      const pid = run.running?.pid;
      signalGroup(pid, "SIGTERM");
      const grace = (this.#spec.terminationGracePeriodSeconds ?? 30) * 1000;
      setTimeout(() => signalGroup(pid, "SIGKILL"), grace).unref();
    };
    if (c.startupProbe) {
      let started = false;
      await loop(c.startupProbe, "startup", (okResult) => {
        if (okResult) {
          run.started = true;
          started = true;
          if (!c.readinessProbe) run.ready = true;
          this.#changed();
          return true;
        }
        kill("failed startup probe");
        return true;
      });
      if (!started || signal.aborted) return;
    }
    const loops: Promise<void>[] = [];
    if (c.readinessProbe) {
      const probe = c.readinessProbe;
      loops.push(
        loop({ ...probe, failureThreshold: probe.failureThreshold ?? 3 }, "readiness", (okResult) => {
          if (run.ready !== okResult) {
            run.ready = okResult;
            this.#changed();
          }
          return false;
        }),
      );
    }
    if (c.livenessProbe) {
      loops.push(
        loop(c.livenessProbe, "liveness", (okResult) => {
          if (okResult) return false;
          kill("failed liveness probe");
          return true;
        }),
      );
    }
    await Promise.all(loops);
  }

  /** Marks the status as changed; writes are coalesced so at most one is in flight. */
  #changed(): void {
    if (this.#terminating) return;
    if (this.#writeQueued) return;
    this.#writeQueued = true;
    this.#writing = this.#writing.then(async () => {
      this.#writeQueued = false;
      await this.#writeStatus();
    });
  }

  /** Resolves when every status change so far has been written. */
  flushed(): Promise<void> {
    return this.#writing;
  }

  #condition(type: string, ok: boolean, reason?: string): PodCondition {
    const status = ok ? "True" : "False";
    const prev = this.#conditionTimes.get(type);
    const time = prev && prev.status === status ? prev.time : now();
    this.#conditionTimes.set(type, { status, time });
    return { type, status, lastProbeTime: null, lastTransitionTime: time, ...(reason && !ok ? { reason } : {}) };
  }

  #containerStatus(run: ContainerRun): ContainerStatus {
    return {
      name: run.spec.name,
      state: run.state,
      lastState: run.lastState,
      ready: run.ready,
      started: "running" in run.state ? run.started : false,
      restartCount: run.restartCount,
      image: run.spec.image ?? "",
      imageID: "",
      ...(run.containerID ? { containerID: run.containerID } : {}),
    };
  }

  /** The pod status this worker reports now. */
  status(): PodStatus {
    const inits = [...this.#runs.values()].filter((r) => r.init);
    const mains = [...this.#runs.values()].filter((r) => !r.init);
    const policy = this.#spec.restartPolicy ?? "Always";
    const allReady = mains.every((r) => r.ready);
    const terminated = mains.map((r) => ("terminated" in r.state ? r.state.terminated.exitCode : undefined));
    const failedInit = inits.some(
      (r) => "terminated" in r.state && r.state.terminated.exitCode !== 0 && policy === "Never",
    );
    let phase: PodStatus["phase"] = "Pending";
    if (failedInit) phase = "Failed";
    else if (this.#initialized && mains.some((r) => "running" in r.state || r.restartCount > 0)) phase = "Running";
    if (this.#initialized && terminated.every((c) => c !== undefined)) {
      phase = terminated.every((c) => c === 0) ? "Succeeded" : "Failed";
    }
    this.#phase = phase;
    const ip = this.#net?.ip;
    const notReady = mains.filter((r) => !r.ready).map((r) => r.spec.name);
    const status: PodStatus = {
      phase,
      conditions: [
        this.#condition("PodReadyToStartContainers", ip !== undefined),
        this.#condition("Initialized", this.#initialized, "ContainersNotInitialized"),
        this.#condition("Ready", this.#initialized && allReady, "ContainersNotReady"),
        this.#condition("ContainersReady", this.#initialized && allReady, "ContainersNotReady"),
        this.#condition("PodScheduled", true),
      ],
      hostIP: this.#ctx.hostIP,
      hostIPs: [{ ip: this.#ctx.hostIP }],
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      ...(this.#startTime ? { startTime: this.#startTime } : {}),
      containerStatuses: mains.map((r) => this.#containerStatus(r)),
      qosClass: "BestEffort",
    };
    const readyCond = status.conditions.find((c) => c.type === "Ready");
    if (readyCond && readyCond.status === "False" && notReady.length > 0 && this.#initialized) {
      readyCond.message = `containers with unready status: [${notReady.join(" ")}]`;
    }
    if (inits.length > 0) status.initContainerStatuses = inits.map((r) => this.#containerStatus(r));
    if (this.#podMessage) {
      status.reason = this.#podMessage.reason;
      status.message = this.#podMessage.message;
    }
    return status;
  }

  get phase(): PodStatus["phase"] {
    return this.#phase;
  }

  async #writeStatus(): Promise<void> {
    if (this.#terminating) return;
    const status = this.status();
    const json = JSON.stringify(status);
    if (json === this.#lastWritten) return;
    try {
      await this.#ctx.client.patch(
        Resources.pods,
        this.pod.metadata.namespace,
        this.pod.metadata.name ?? "",
        "application/merge-patch+json",
        { status },
        { subresource: "status" },
      );
      this.#lastWritten = json;
    } catch (err) {
      if (isApiError(err, 404)) return;
      this.#log.warn("status update failed; will retry", { error: errorMessage(err) });
      setTimeout(() => this.#changed(), 500).unref();
    }
  }

  /** Stops the containers (SIGTERM, SIGKILL after the grace period) and tears the pod down. Idempotent. */
  terminate(graceSeconds: number): Promise<void> {
    this.#terminating ??= this.#terminate(graceSeconds);
    return this.#terminating;
  }

  async #terminate(graceSeconds: number): Promise<void> {
    this.#ac.abort();
    for (const t of this.#tokenTimers) clearTimeout(t);
    const runs = [...this.#runs.values()].filter((r) => r.running);
    for (const r of runs) {
      this.#ctx.event(this.pod, "Normal", "Killing", `Stopping container ${r.spec.name}`, this.#fieldPath(r));
      signalGroup(r.running?.pid, "SIGTERM");
    }
    const exits = runs.map((r) => r.exited ?? Promise.resolve());
    const all = Promise.all(exits);
    if (graceSeconds > 0) {
      const timer = new Promise<void>((resolve) => setTimeout(resolve, graceSeconds * 1000).unref());
      await Promise.race([all, timer]);
    }
    for (const r of runs) signalGroup(r.running?.pid, "SIGKILL");
    await Promise.race([all, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
    await this.#writing.catch(() => {});
    if (this.#net) await this.#ctx.networks.teardown(this.#net);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
