/**
 * What a state-of-the-world DiscoveryRequest means, decided from what the stream last sent for its
 * type. Pure and table-tested: the server's correctness with Envoy's protocol rests on it.
 */

/** What the stream last did for one type: the nonce it sent and the names the client had subscribed. */
export interface SentState {
  readonly nonce: string;
  readonly subscribed: ReadonlySet<string>;
}

/** The parts of a DiscoveryRequest classification looks at. */
export interface RequestFacts {
  readonly versionInfo: string;
  readonly responseNonce: string;
  readonly resourceNames: readonly string[];
  readonly errorDetail?: { readonly message: string } | undefined;
}

export type RequestMeaning =
  /** No nonce, or a stream that has sent nothing for this type yet (a reconnect): answer with the current state. */
  | { readonly kind: "initial" }
  /** The client applied the response with this nonce. */
  | { readonly kind: "ack"; readonly version: string; readonly nonce: string }
  /** The client rejected the response with this nonce; it keeps its last good version (`version`). */
  | { readonly kind: "nack"; readonly version: string; readonly nonce: string; readonly message: string }
  /** Answers a response the server has since superseded; the client will answer the newer one. Ignore. */
  | { readonly kind: "stale-nonce"; readonly nonce: string }
  /**
   * A changed subscription carrying the latest nonce. Not an ACK: the client waits for resources it
   * has just named (grpc-js-xds does this when a second watcher joins a shared ADS stream).
   */
  | {
      readonly kind: "resubscribe";
      readonly version: string;
      readonly nonce: string;
      readonly added: readonly string[];
      readonly removed: readonly string[];
    };

/** Names added and removed between two subscriptions, each sorted. */
export function diffNames(
  before: ReadonlySet<string>,
  after: readonly string[],
): { added: string[]; removed: string[] } {
  // ACKs repeat the same (often long) name list: settle that case without building sets.
  if (after.length === before.size && after.every((n) => before.has(n))) return { added: [], removed: [] };
  const now = new Set(after);
  const added = [...now].filter((n) => !before.has(n)).sort();
  const removed = [...before].filter((n) => !now.has(n)).sort();
  return { added, removed };
}

/** Classifies one state-of-the-world request. `sent` is undefined when nothing was sent for its type on this stream. */
export function classifyRequest(sent: SentState | undefined, req: RequestFacts): RequestMeaning {
  if (sent === undefined || req.responseNonce === "") return { kind: "initial" };
  if (req.responseNonce !== sent.nonce) return { kind: "stale-nonce", nonce: req.responseNonce };
  if (req.errorDetail !== undefined) {
    return { kind: "nack", version: req.versionInfo, nonce: req.responseNonce, message: req.errorDetail.message };
  }
  const { added, removed } = diffNames(sent.subscribed, req.resourceNames);
  if (added.length + removed.length > 0) {
    return { kind: "resubscribe", version: req.versionInfo, nonce: req.responseNonce, added, removed };
  }
  return { kind: "ack", version: req.versionInfo, nonce: req.responseNonce };
}
