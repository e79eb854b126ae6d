/**
 * `isthmus demo [--cleanup] [--requests N]`: the whole "Install Multi-Primary" guide on two
 * local clusters, each step run as the guide writes it (isthmus in place of istioctl, the
 * machine's kubectl), with its time; then helloworld is called from each cluster's sleep pod
 * and the answers counted by version. Re-running reuses what is there; a failing step stops
 * with what was seen and what to check next.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { isthmusHome } from "../devcluster/cluster/index.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const clusters = ["cluster1", "cluster2"] as const;

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly detail: string,
    readonly hint: string,
  ) {
    super(`${step}: ${detail}`);
  }
}

/** Runs one shell command line (pipes allowed) with the checkout's `isthmus` first on PATH. */
function sh(command: string, env: NodeJS.ProcessEnv, input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-o", "pipefail", "-c", command], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

class Demo {
  readonly #env: NodeJS.ProcessEnv;
  readonly #work: string;
  readonly #started = Date.now();

  constructor(work: string) {
    this.#work = work;
    this.#env = {
      ...process.env,
      PATH: `${join(repoRoot, "bin")}${delimiter}${process.env.PATH ?? ""}`,
      CTX_CLUSTER1: "cluster1",
      CTX_CLUSTER2: "cluster2",
    };
  }

  say(line: string): void {
    process.stdout.write(`${line}\n`);
  }

  /** Runs a command of the guide, echoing it; throws StepFailed with `hint` when it fails. */
  async run(command: string, hint: string, opts: { quiet?: boolean; allowFail?: boolean } = {}): Promise<Ran> {
    const t0 = Date.now();
    if (!opts.quiet) this.say(`  $ ${command}`);
    const r = await sh(`cd ${JSON.stringify(this.#work)} && ${command}`, this.#env);
    if (r.code !== 0 && !opts.allowFail) {
      throw new StepFailed(command, (r.stderr || r.stdout).trim().split("\n").slice(-8).join("\n"), hint);
    }
    if (!opts.quiet && r.stdout.trim() !== "") {
      for (const l of r.stdout.trimEnd().split("\n").slice(0, 12)) this.say(`    ${l}`);
    }
    if (!opts.quiet) this.say(`    (${seconds(Date.now() - t0)})`);
    return r;
  }

  async step(title: string, body: () => Promise<void>): Promise<void> {
    const t0 = Date.now();
    this.say(`\n▸ ${title}`);
    await body();
    this.say(`✔ ${title} (${seconds(Date.now() - t0)})`);
  }

  /** Polls `command` until `done(stdout)` or the timeout; the last output is part of the failure. */
  async waitUntil(
    what: string,
    command: string,
    done: (out: string) => boolean,
    timeoutMs: number,
    hint: string,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Ran | undefined;
    this.say(`  … waiting for ${what}`);
    while (Date.now() < deadline) {
      last = await sh(command, this.#env);
      if (last.code === 0 && done(last.stdout)) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new StepFailed(
      `waiting for ${what}`,
      `still not there after ${timeoutMs / 1000} s; last seen:\n${(last?.stdout || last?.stderr || "").trim()}`,
      hint,
    );
  }

  async clustersUp(): Promise<void> {
    for (const c of clusters) {
      const list = await sh("isthmus cluster list", this.#env);
      const row = list.stdout.split("\n").find((l) => l.split(/\s+/)[0] === c);
      if (row?.includes("Ready")) this.say(`  cluster ${c} is already running`);
      else if (row !== undefined)
        await this.run(
          `isthmus cluster start ${c}`,
          `see ${join(isthmusHome(this.#env), "clusters", c, "daemon.log")}`,
        );
      else
        await this.run(
          `isthmus cluster create ${c} --network network1`,
          "local clusters need root, iproute2 and iptables (see the README's set-up)",
        );
    }
  }

  writeOperatorFiles(): void {
    for (const c of clusters) {
      const file = join(this.#work, `${c}.yaml`);
      writeFileSync(
        file,
        `apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    global:\n      meshID: mesh1\n      multiCluster:\n        clusterName: ${c}\n      network: network1\n`,
      );
      this.say(`  wrote ${file}`);
    }
  }

  async sharedRoot(): Promise<void> {
    const certs = join(this.#work, "certs");
    mkdirSync(certs, { recursive: true });
    if (!existsSync(join(certs, "root-cert.pem")))
      await this.run("isthmus x ca create-root --out-dir certs", "check that the work folder is writable");
    for (const c of clusters) {
      if (!existsSync(join(certs, c, "ca-cert.pem"))) {
        await this.run(
          `isthmus x ca create-intermediate --cluster ${c} --root-dir certs --out-dir certs/${c}`,
          "check certs/root-cert.pem and root-key.pem",
        );
      }
      await this.run(
        `kubectl create namespace istio-system --context=${c} --dry-run=client -o yaml | kubectl apply --context=${c} -f -`,
        `is cluster ${c} up? (isthmus cluster list)`,
      );
      await this.run(
        `kubectl create secret generic cacerts -n istio-system --context=${c} --from-file=certs/${c}/ca-cert.pem --from-file=certs/${c}/ca-key.pem --from-file=certs/${c}/root-cert.pem --from-file=certs/${c}/cert-chain.pem --dry-run=client -o yaml | kubectl apply --context=${c} -f -`,
        "the cacerts secret must exist before the control plane starts",
      );
    }
  }

  async callHelloworld(c: string, n: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const pod = (
      await this.run(
        `kubectl get pod --context=${c} -n sample -l app=sleep -o jsonpath='{.items[0].metadata.name}'`,
        "is sleep running?",
        { quiet: true },
      )
    ).stdout.trim();
    this.say(
      `  $ kubectl exec --context=${c} -n sample -c sleep ${pod} -- curl -sS helloworld.sample:5000/hello   (× ${n})`,
    );
    for (let i = 0; i < n; i++) {
      const r = await this.run(
        `kubectl exec --context=${c} -n sample -c sleep ${pod} -- curl -sS helloworld.sample:5000/hello`,
        "check `isthmus proxy-config endpoint` for the sleep pod and `isthmus remote-clusters`",
        {
          quiet: true,
          allowFail: true,
        },
      );
      const version =
        /Hello version: (v\d+)/.exec(r.stdout)?.[1] ?? `error: ${(r.stdout + r.stderr).trim().split("\n")[0]}`;
      if (i < 4) this.say(`    ${r.stdout.trim() || r.stderr.trim()}`);
      counts.set(version, (counts.get(version) ?? 0) + 1);
    }
    return counts;
  }

  async runGuide(requests: number, cleanup: boolean): Promise<void> {
    this.say(`Isthmus demo: the "Install Multi-Primary" guide on two local clusters (work folder ${this.#work})`);
    await this.step("Local clusters cluster1 and cluster2 on network1", () => this.clustersUp());
    await this.step("The guide's cluster1.yaml and cluster2.yaml", async () => this.writeOperatorFiles());
    await this.step("A shared root CA and per-cluster intermediates, installed as cacerts (Before you begin)", () =>
      this.sharedRoot(),
    );
    await this.step("Configure cluster1 and cluster2 as primaries", async () => {
      for (const c of clusters)
        await this.run(
          `isthmus install --context="${c}" -f ${c}.yaml -y`,
          `check: kubectl --context=${c} -n istio-system get pods; kubectl --context=${c} -n istio-system logs deploy/istiod`,
        );
    });
    await this.step("Enable endpoint discovery (remote secrets in both directions)", async () => {
      await this.run(
        `isthmus x create-remote-secret --context="\${CTX_CLUSTER1}" --name=cluster1 | kubectl apply -f - --context="\${CTX_CLUSTER2}"`,
        "check that cluster1's API server answers",
      );
      await this.run(
        `isthmus x create-remote-secret --context="\${CTX_CLUSTER2}" --name=cluster2 | kubectl apply -f - --context="\${CTX_CLUSTER1}"`,
        "check that cluster2's API server answers",
      );
      for (const [c, other] of [
        ["cluster1", "cluster2"],
        ["cluster2", "cluster1"],
      ] as const) {
        await this.waitUntil(
          `${c}'s control plane to report ${other} synced`,
          `isthmus remote-clusters --context=${c}`,
          (out) => out.split("\n").some((l) => l.startsWith(`${other} `) && /\bsynced\b/.test(l)),
          90_000,
          `check: isthmus remote-clusters --context=${c}; kubectl --context=${c} -n istio-system logs deploy/istiod`,
        );
        await this.run(`isthmus remote-clusters --context=${c}`, "", { allowFail: true });
      }
    });
    await this.step("Deploy HelloWorld (service in both, v1 in cluster1, v2 in cluster2) and Sleep", async () => {
      for (const c of clusters) {
        await this.run(
          `kubectl create --context=${c} namespace sample --dry-run=client -o yaml | kubectl apply --context=${c} -f -`,
          "",
        );
        await this.run(`kubectl label --context=${c} namespace sample istio-injection=enabled --overwrite`, "");
        await this.run(
          `kubectl apply --context=${c} -f ${join(repoRoot, "samples", "helloworld.yaml")} -l service=helloworld -n sample`,
          "",
        );
      }
      await this.run(
        `kubectl apply --context=cluster1 -f ${join(repoRoot, "samples", "helloworld.yaml")} -l version=v1 -n sample`,
        "",
      );
      await this.run(
        `kubectl apply --context=cluster2 -f ${join(repoRoot, "samples", "helloworld.yaml")} -l version=v2 -n sample`,
        "",
      );
      for (const c of clusters)
        await this.run(`kubectl apply --context=${c} -f ${join(repoRoot, "samples", "sleep.yaml")} -n sample`, "");
      for (const c of clusters) {
        for (const app of ["helloworld", "sleep"]) {
          await this.run(
            `kubectl wait --context=${c} -n sample --for=condition=Ready pod -l app=${app} --timeout=180s`,
            `check: kubectl --context=${c} -n sample describe pod -l app=${app}`,
          );
        }
        await this.run(`kubectl get pod --context=${c} -n sample`, "");
      }
    });
    const results = new Map<string, Map<string, number>>();
    await this.step("Verify cross-cluster traffic", async () => {
      for (const c of clusters) results.set(c, await this.callHelloworld(c, requests));
    });
    this.say("\nAnswers by version:");
    let ok = true;
    for (const [c, counts] of results) {
      const parts = [...counts].sort().map(([v, n]) => `${v}: ${n}`);
      this.say(`  from ${c}'s sleep pod: ${parts.join(", ")}`);
      if (!counts.has("v1") || !counts.has("v2")) ok = false;
    }
    this.say(`\nTotal time: ${seconds(Date.now() - this.#started)}`);
    if (!ok) {
      throw new StepFailed(
        "Verify cross-cluster traffic",
        "each cluster's sleep pod should get answers from both v1 (cluster1) and v2 (cluster2)",
        "check: isthmus proxy-config endpoint <sleep pod>.sample --context=cluster1; isthmus remote-clusters --context=cluster1",
      );
    }
    this.say("Both versions answered from both clusters: the mesh spans cluster1 and cluster2.");
    if (cleanup) {
      await this.step("Clean up", async () => {
        for (const c of clusters) await this.run(`isthmus cluster delete ${c}`, "");
      });
    } else {
      this.say(
        [
          "",
          "The clusters stay up. Explore them:",
          "  kubectl --context=cluster1 get pods -A",
          "  isthmus remote-clusters --context=cluster1",
          "  isthmus proxy-status --context=cluster1",
          "  isthmus proxy-config endpoint $(kubectl --context=cluster1 -n sample get pod -l app=sleep -o jsonpath='{.items[0].metadata.name}').sample --context=cluster1",
          "Clean up with: isthmus cluster delete cluster1 && isthmus cluster delete cluster2   (or: npm run demo -- --cleanup)",
        ].join("\n"),
      );
    }
  }
}

/** Entry point for `isthmus demo`. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("isthmus demo")
    .description("run the Install Multi-Primary guide on two local clusters")
    .option("--cleanup", "delete both clusters at the end", false)
    .option("--requests <n>", "requests from each sleep pod", "10")
    .option("--work-dir <dir>", "where the guide's files go (default $ISTHMUS_HOME/demo)")
    .exitOverride();
  try {
    program.parse(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const opts = program.opts<{ cleanup: boolean; requests: string; workDir?: string }>();
  const requests = Number(opts.requests);
  if (!Number.isInteger(requests) || requests < 2) {
    process.stderr.write(`error: --requests "${opts.requests}": use a whole number of at least 2\n`);
    return 2;
  }
  const work = opts.workDir ?? join(isthmusHome(process.env), "demo");
  mkdirSync(work, { recursive: true });
  const demo = new Demo(work);
  try {
    await demo.runGuide(requests, opts.cleanup);
    return 0;
  } catch (err) {
    if (!(err instanceof StepFailed)) throw err;
    process.stderr.write(
      `\n✘ The demo stopped at: ${err.step}\n  What was seen:\n${err.detail.replace(/^/gm, "    ")}\n`,
    );
    if (err.hint) process.stderr.write(`  What to check next: ${err.hint}\n`);
    return 1;
  }
}
