/**
 * `isthmus x ...`: istioctl's experimental commands that the guide uses (`x create-remote-secret`)
 * and the certificate tools of "before you begin" (`x ca create-root`, `x ca create-intermediate`),
 * which write the same files as Istio's tools/certs Makefiles.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { createIntermediateCa, createRootCa } from "../ca/index.js";
import { runCommand } from "./common.js";
import { main as createRemoteSecretMain } from "./remote-secret.js";

function command(name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
}

function writeFiles(dir: string, files: Record<string, string>, force: boolean): void {
  const existing = Object.keys(files).filter((f) => existsSync(join(dir, f)));
  if (existing.length > 0 && !force) {
    throw new Error(`${existing.map((f) => join(dir, f)).join(", ")} already exist; pass --force to overwrite them`);
  }
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    // Keys are secrets: readable by their owner only.
    writeFileSync(join(dir, name), text, { mode: name.endsWith("-key.pem") ? 0o600 : 0o644 });
  }
}

/** `x ca create-root [--out-dir DIR] [--days N] [--force]`: root-cert.pem and root-key.pem. */
async function createRoot(argv: string[]): Promise<number> {
  const cmd = command("x ca create-root")
    .description("make the mesh's shared root CA (root-cert.pem, root-key.pem)")
    .option("--out-dir <dir>", "where to write the files", ".")
    .option("--days <n>", "validity in days", "3650")
    .option("--force", "overwrite existing files");
  cmd.parse(argv, { from: "user" });
  const o = cmd.opts<{ outDir: string; days: string; force?: boolean }>();
  const days = Number(o.days);
  if (!Number.isInteger(days) || days <= 0) throw new Error(`--days ${o.days}: expected a whole number of days`);
  const root = await createRootCa({ days });
  writeFiles(o.outDir, { "root-cert.pem": root.certPem, "root-key.pem": root.keyPem }, o.force === true);
  process.stdout.write(`wrote ${join(o.outDir, "root-cert.pem")} and ${join(o.outDir, "root-key.pem")}\n`);
  process.stdout.write(
    `next, for each cluster: isthmus x ca create-intermediate --cluster <name> --root-dir ${o.outDir}\n`,
  );
  return 0;
}

/** `x ca create-intermediate --cluster NAME [--root-dir DIR] [--out-dir DIR]`: the four cacerts files. */
async function createIntermediate(argv: string[]): Promise<number> {
  const cmd = command("x ca create-intermediate")
    .description(
      "make a cluster's intermediate CA under the root: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem",
    )
    .requiredOption("--cluster <name>", "the cluster's name (written as L=<name>)")
    .option("--root-dir <dir>", "where root-cert.pem and root-key.pem are", ".")
    .option("--out-dir <dir>", "where to write the files (default ./<cluster>)")
    .option("--days <n>", "validity in days", "3650")
    .option("--force", "overwrite existing files");
  cmd.parse(argv, { from: "user" });
  const o = cmd.opts<{ cluster: string; rootDir: string; outDir?: string; days: string; force?: boolean }>();
  const days = Number(o.days);
  if (!Number.isInteger(days) || days <= 0) throw new Error(`--days ${o.days}: expected a whole number of days`);
  const read = (f: string) => {
    const p = join(o.rootDir, f);
    if (!existsSync(p))
      throw new Error(`${p} does not exist; make the root first with isthmus x ca create-root --out-dir ${o.rootDir}`);
    return readFileSync(p, "utf8");
  };
  const files = await createIntermediateCa({
    parent: { certPem: read("root-cert.pem"), keyPem: read("root-key.pem") },
    cluster: o.cluster,
    days,
  });
  const outDir = o.outDir ?? o.cluster;
  writeFiles(outDir, { ...files }, o.force === true);
  process.stdout.write(`wrote ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem to ${outDir}\n`);
  process.stdout.write(
    `install them before isthmus install:\n  kubectl create namespace istio-system\n  kubectl create secret generic cacerts -n istio-system \\\n` +
      `    --from-file=${outDir}/ca-cert.pem --from-file=${outDir}/ca-key.pem \\\n    --from-file=${outDir}/root-cert.pem --from-file=${outDir}/cert-chain.pem\n`,
  );
  return 0;
}

const usage = `Usage: isthmus x <command>

Commands:
  create-remote-secret        print a Secret that gives a control plane access to this cluster
  ca create-root              make the shared root CA (root-cert.pem, root-key.pem)
  ca create-intermediate      make a cluster's intermediate CA (--cluster NAME)
`;

/** Dispatches `isthmus x <command>`. */
export async function main(argv: string[]): Promise<number> {
  const [word, ...rest] = argv;
  if (word === "create-remote-secret") return createRemoteSecretMain(rest);
  if (word === "ca") {
    const [sub, ...args] = rest;
    if (sub === "create-root") return runCommand("x ca create-root", () => createRoot(args));
    if (sub === "create-intermediate") return runCommand("x ca create-intermediate", () => createIntermediate(args));
  }
  if (word === undefined || word === "help" || word === "--help" || word === "-h") {
    process.stdout.write(usage);
    return word === undefined ? 2 : 0;
  }
  process.stderr.write(`isthmus x: unknown command ${JSON.stringify(argv.join(" "))}\n${usage}`);
  return 2;
}
