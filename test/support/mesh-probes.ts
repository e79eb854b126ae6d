/**
 * Probes a test points at the mesh from outside it: a TLS client with or without a client
 * certificate, a certificate from a root the mesh never saw, a raw certificate request with a
 * CSR of the caller's choosing, and raw bytes to a port.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import {
  IstioCertificateRequestSchema,
  type IstioCertificateResponse,
  IstioCertificateResponseSchema,
} from "../../src/gen/istio/v1/auth/ca_pb.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A self-signed certificate (its own root) naming `spiffeId`, as PEM. */
export async function foreignCertificate(spiffeId: string): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "O=not-the-mesh",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }], true)],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  return { certPem: cert.toString("pem"), keyPem };
}

export interface TlsProbeResult {
  /** The first bytes the server answered to an HTTP request sent over the TLS connection. */
  readonly response: string;
  readonly error?: string;
}

/**
 * Opens TLS to host:port with Istio's ALPN and optional client certificate, sends one HTTP
 * request and returns what came back. The client does not check the server: only whether the
 * server accepts this client is under test.
 */
export function tlsProbe(opts: {
  host: string;
  port: number;
  path: string;
  certPem?: string;
  keyPem?: string;
}): Promise<TlsProbeResult> {
  return new Promise((resolve) => {
    let response = "";
    let error: string | undefined;
    const socket = tls.connect({
      host: opts.host,
      port: opts.port,
      rejectUnauthorized: false,
      ALPNProtocols: ["istio-http/1.1", "istio"],
      ...(opts.certPem ? { cert: opts.certPem, key: opts.keyPem } : {}),
    });
    const timer = setTimeout(() => socket.destroy(new Error("no answer within 10 s")), 10_000);
    socket.on("secureConnect", () => {
      socket.write(`GET ${opts.path} HTTP/1.1\r\nhost: ${opts.host}\r\nconnection: close\r\n\r\n`);
    });
    socket.on("data", (d: Buffer) => {
      response += d.toString();
    });
    socket.on("error", (e) => {
      error = e.message;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ response, ...(error ? { error } : {}) });
    });
  });
}

/** Sends `bytes` to host:port and resolves with what came back before the peer closed (or 5 s passed). */
export function rawExchange(host: string, port: number, bytes: Buffer): Promise<{ answer: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const socket = net.connect({ host, port }, () => socket.end(bytes));
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", (e) => {
      error = e.message;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ answer: Buffer.concat(chunks), ...(error ? { error } : {}) });
    });
  });
}

/** A CSR for `spiffeId` with a fresh key, as PEM. */
export async function csrFor(spiffeId: string): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "",
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }], true)],
  });
  return csr.toString("pem");
}

/**
 * Calls `IstioCertificateService/CreateCertificate` with exactly the CSR given (which may be
 * junk); resolves with the chain or the CA's refusal, never rejects.
 */
export async function createCertificate(opts: {
  caAddress: string;
  caRootPem: string;
  serverName: string;
  token: string;
  clusterId: string;
  csr: string;
}): Promise<{ chain?: string[]; error?: string }> {
  const client = new grpc.Client(opts.caAddress, grpc.credentials.createSsl(Buffer.from(opts.caRootPem)), {
    "grpc.ssl_target_name_override": opts.serverName,
    "grpc.default_authority": opts.serverName,
  });
  try {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${opts.token}`);
    metadata.set("clusterid", opts.clusterId);
    const request = create(IstioCertificateRequestSchema, { csr: opts.csr, validityDuration: 3600n });
    return await new Promise((resolve) => {
      client.makeUnaryRequest(
        "/istio.v1.auth.IstioCertificateService/CreateCertificate",
        (m: typeof request) => Buffer.from(toBinary(IstioCertificateRequestSchema, m)),
        (b: Buffer): IstioCertificateResponse => fromBinary(IstioCertificateResponseSchema, b),
        request,
        metadata,
        { deadline: Date.now() + 20_000 },
        (err, value) => {
          if (err) resolve({ error: `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}` });
          else resolve({ chain: value?.certChain ?? [] });
        },
      );
    });
  } finally {
    client.close();
  }
}

/** The URI SANs of a PEM certificate. */
export function uriSans(pem: string): string[] {
  const san = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return san?.names.items.filter((n) => n.type === "url").map((n) => n.value) ?? [];
}

/** A CSR for `spiffeId` with its private key, both PEM (to use the certificate the CA returns). */
export async function csrWithKey(spiffeId: string): Promise<{ csr: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "",
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }], true)],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  return { csr: csr.toString("pem"), keyPem };
}
