/**
 * Bundles `src/cmd/isthmus.ts` into `dist/` (docs/adr/0005): one ESM chunk per command, so a
 * pod's process starts without tsx's loader hooks and without resolving hundreds of files.
 * Run by `npm ci` (the `install` script) and `npm run build`; `bin/isthmus` uses the bundle only
 * while it is newer than everything under src/ and falls back to tsx otherwise.
 *
 * Packages from node_modules are bundled too: resolving and loading @kubernetes/client-node's
 * hundreds of ES modules one by one is most of a CLI call's start-up. Kept external (loaded by
 * Node from node_modules as usual): packages that read files beside their own code, and
 * optional native modules that may be missing.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { build, type Plugin } from "esbuild";

const root = resolve(import.meta.dirname, "..");
const outdir = join(root, "dist");
/**
 * @grpc/grpc-js loads its .proto files from `__dirname` (channelz, ORCA); ws tries two optional
 * native packages.
 */
const external = ["@grpc/grpc-js", "bufferutil", "utf-8-validate"];
/**
 * Bundled CommonJS code calls `require` for Node's built-ins; an ES module has none, so every
 * chunk provides one (esbuild's shim looks for a global `require`).
 */
const requireShim =
  'import { createRequire as __isthmusCreateRequire } from "node:module"; globalThis.require ??= __isthmusCreateRequire(import.meta.url);';
/** Written last; its mtime is the moment the build read src/ (bin/isthmus compares against it). */
const stampName = ".built";

/**
 * Inside a chunk, `import.meta.url` would name the chunk, not the source file; code that finds
 * files relative to itself (package.json, bin/, the native addon, samples/) must keep seeing the
 * source file's location, so each use is rewritten to the source path relative to the chunk.
 */
function sourceLocation(outDir: string): Plugin {
  return {
    name: "source-location",
    setup(b) {
      b.onLoad({ filter: /\/src\/.*\.ts$/ }, (args) => {
        const text = readFileSync(args.path, "utf8");
        if (!text.includes("import.meta.")) return { contents: text, loader: "ts" };
        const file = relative(outDir, args.path);
        const dir = relative(outDir, dirname(args.path));
        const contents = text
          .replaceAll("import.meta.url", `new URL(${JSON.stringify(file)}, import.meta.url).href`)
          .replaceAll("import.meta.dirname", `(import.meta.dirname + ${JSON.stringify(`/${dir}`)})`)
          .replaceAll("import.meta.filename", `(import.meta.dirname + ${JSON.stringify(`/${file}`)})`);
        return { contents, loader: "ts" };
      });
    },
  };
}

const started = new Date();
// Built beside the final folder and renamed into place, so a process starting meanwhile sees
// either the old complete bundle or the new one, never half of it.
const tmp = `${outdir}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
try {
  await build({
    entryPoints: { isthmus: join(root, "src/cmd/isthmus.ts") },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external,
    banner: { js: requireShim },
    sourcemap: "linked",
    chunkNames: "chunk-[hash]",
    logLevel: "warning",
    plugins: [sourceLocation(outdir)],
  });
  writeFileSync(join(tmp, stampName), "");
  utimesSync(join(tmp, stampName), started, started);
  rmSync(outdir, { recursive: true, force: true });
  renameSync(tmp, outdir);
} catch (err) {
  rmSync(tmp, { recursive: true, force: true });
  throw err;
}
