/**
 * The image catalogue: which images a local cluster can run and how. There is no container
 * engine; an image is a name for a program of this checkout or a host tool. Add a row to
 * `catalogue` to support another image.
 */
import { join } from "node:path";
import type { Container } from "./pod-types.js";

/** What to execute for a container: argv[0] is looked up on PATH; env is added to the container's. */
export interface ProgramLaunch {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export interface CatalogueContext {
  /** The checkout whose `bin/isthmus` runs isthmus images. */
  readonly repoRoot: string;
  /** The node binary that runs it. */
  readonly nodeBinary: string;
}

export interface CatalogueEntry {
  /** Shown in the message of ImagePullBackOff. */
  readonly describe: string;
  /** Returns the launch for a matching image, else undefined. */
  match(image: string, container: Container, ctx: CatalogueContext): ProgramLaunch | undefined;
}

const isthmus = (ctx: CatalogueContext): string[] => [ctx.nodeBinary, join(ctx.repoRoot, "bin", "isthmus")];
const commandAndArgs = (c: Container, defaultCommand: string[]): string[] => [
  ...(c.command ?? defaultCommand),
  ...(c.args ?? []),
];

/** The rows, first match wins. */
export const catalogue: CatalogueEntry[] = [
  {
    describe:
      "helloworld samples (docker.io/istio/examples-helloworld-v1|v2[:tag], registry.istio.io/release/examples-helloworld-v1|v2[:tag])",
    match(image, _c, ctx) {
      const m =
        /^(?:(?:docker\.io\/)?istio\/|registry\.istio\.io\/release\/)examples-helloworld-(v\d+)(?::[\w.-]+)?$/.exec(
          image,
        );
      if (!m?.[1]) return undefined;
      return { argv: [...isthmus(ctx), "program", "helloworld"], env: { SERVICE_VERSION: m[1] } };
    },
  },
  {
    describe:
      "curl images (curlimages/curl[:tag], docker.io/curlimages/curl[:tag]) running their command with the host's tools",
    match(image, c) {
      if (!/^(?:docker\.io\/)?curlimages\/curl(?::[\w.-]+)?(?:@sha256:[0-9a-f]+)?$/.test(image)) return undefined;
      return { argv: commandAndArgs(c, ["curl"]), env: {} };
    },
  },
  {
    describe: "the gRPC echo server (<hub>/isthmus/grpc-echo[:tag]), answering with the pod's name",
    match(image, c, ctx) {
      if (!/^(?:[^/\s]+\/)*isthmus\/grpc-echo(?::[\w.-]+)?$/.test(image)) return undefined;
      return { argv: [...isthmus(ctx), "program", "grpc-echo", ...(c.args ?? [])], env: {} };
    },
  },
  {
    describe:
      "Isthmus images (<hub>/pilot:<tag>, <hub>/proxyv2:<tag>) running this checkout's bin/isthmus with the container's args",
    match(image, c, ctx) {
      if (!/^(?:[^/\s]+\/)*(?:pilot|proxyv2)(?::[\w.-]+)?(?:@sha256:[0-9a-f]+)?$/.test(image)) return undefined;
      return { argv: [...isthmus(ctx), ...(c.args ?? [])], env: {} };
    },
  },
];

/** Why an image cannot run: the message of ErrImagePull/ImagePullBackOff. */
export function unknownImageMessage(image: string): string {
  return `image "${image}" is not available on a local cluster (there is no container engine); it can run: ${catalogue
    .map((e) => e.describe)
    .join("; ")}`;
}

/** Finds the launch for a container's image, or undefined when no row matches. */
export function resolveImage(container: Container, ctx: CatalogueContext): ProgramLaunch | undefined {
  const image = container.image ?? "";
  for (const entry of catalogue) {
    const launch = entry.match(image, container, ctx);
    if (launch) return launch;
  }
  return undefined;
}
