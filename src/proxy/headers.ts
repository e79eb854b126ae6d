/**
 * Connection-specific headers (RFC 9110 §7.6.1, RFC 9113 §8.2.2): never passed from one hop to the
 * next, whichever HTTP version either side speaks. Each codec adds its own exceptions on top.
 */
export const connectionHeaders: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
];
