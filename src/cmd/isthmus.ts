/**
 * The `isthmus` command: dispatches the first word to the module that owns it, loading only
 * that module (a pod's sidecar should not pay for the CLI's imports at start-up).
 * Each module exports `main(argv: string[]): Promise<number>` (argv after the command word)
 * and returns the exit code.
 */
type Main = (argv: string[]) => Promise<number>;
type Loader = () => Promise<{ main: Main }>;

/**
 * Each loader is a literal `import()` so that a command's module is loaded only when used and
 * so that the bundler (scripts/build.ts, docs/adr/0005) can split the program per command.
 */
function lazy(load: () => Promise<Record<string, unknown>>, exportName = "main"): Loader {
  return async () => {
    const mod = await load();
    const main = mod[exportName];
    if (typeof main !== "function") throw new Error(`module does not export ${exportName}()`);
    return { main: main as Main };
  };
}

interface Command {
  readonly summary: string;
  readonly load: Loader;
}

const commands: Record<string, Command> = {
  cluster: {
    summary: "create, delete, list, stop and start local clusters",
    load: lazy(() => import("../cli/cluster.js")),
  },
  demo: {
    summary: "run the whole Install Multi-Primary guide on two local clusters",
    load: lazy(() => import("../cli/demo.js")),
  },
  install: {
    summary: "install the control plane from an IstioOperator file",
    load: lazy(() => import("../cli/install.js")),
  },
  uninstall: { summary: "remove the control plane", load: lazy(() => import("../cli/install.js"), "uninstallMain") },
  manifest: {
    summary: "print the manifests install would apply (manifest generate -f FILE)",
    load: lazy(() => import("../cli/install.js"), "manifestMain"),
  },
  "verify-install": {
    summary: "check that an installation is complete and healthy",
    load: lazy(() => import("../cli/install.js"), "verifyInstallMain"),
  },
  "create-remote-secret": {
    summary: "print a Secret that gives a control plane access to this cluster",
    load: lazy(() => import("../cli/remote-secret.js")),
  },
  "remote-clusters": {
    summary: "list the clusters a control plane watches and their sync status",
    load: lazy(() => import("../cli/remote-clusters.js")),
  },
  "kube-inject": {
    summary: "inject the sidecar into Kubernetes manifests",
    load: lazy(() => import("../cli/kube-inject.js")),
  },
  "proxy-status": { summary: "show every proxy's xDS sync state", load: lazy(() => import("../cli/proxy-status.js")) },
  "proxy-config": {
    summary: "show a proxy's endpoints, clusters, listeners, routes or secrets",
    load: lazy(() => import("../cli/proxy-config.js")),
  },
  version: { summary: "print the client and control plane versions", load: lazy(() => import("../cli/version.js")) },
  x: {
    summary: "experimental commands (create-remote-secret, ca)",
    load: lazy(() => import("../cli/experimental.js")),
  },
  discovery: { summary: "run the control plane (istiod)", load: lazy(() => import("./discovery.js")) },
  proxy: {
    summary: "run the sidecar (proxy sidecar) or set up traffic capture (proxy init)",
    load: lazy(() => import("./proxy.js")),
  },
  program: {
    summary: "run a built-in workload program (used by local clusters' images)",
    load: lazy(() => import("./program.js")),
  },
  devcluster: {
    summary: "run one local cluster in the foreground (started by `cluster create`)",
    load: lazy(() => import("./devcluster.js")),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: isthmus <command> [flags]\n\nCommands:\n${lines.join("\n")}\n`;
}

async function run(argv: string[]): Promise<number> {
  const [word, ...rest] = argv;
  if (word === undefined || word === "help" || word === "--help" || word === "-h") {
    process.stdout.write(usage());
    return word === undefined ? 2 : 0;
  }
  const command = commands[word];
  if (command === undefined) {
    process.stderr.write(`isthmus: unknown command "${word}". Run \`isthmus help\` for the list.\n`);
    return 2;
  }
  let mod: { main: Main };
  try {
    mod = await command.load();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND") {
      process.stderr.write(`isthmus: "${word}" is not built yet in this version.\n`);
      return 3;
    }
    throw err;
  }
  return mod.main(rest);
}

try {
  const code = await run(process.argv.slice(2));
  process.exitCode = code;
} catch (err) {
  // A bug, not a user error: print the message and where, but never a secret-bearing object.
  process.stderr.write(`isthmus: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 70;
}
