/**
 * A small DNS message codec (RFC 1035) covering what a cluster resolver needs: queries in,
 * answers with A records (and empty answers) out. Names in answers are written uncompressed.
 */

export const RecordType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, OPT: 41 } as const;
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface Question {
  /** Lower-case, without the trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface Query {
  readonly id: number;
  /** Opcode from the header; only 0 (QUERY) is answered. */
  readonly opcode: number;
  readonly recursionDesired: boolean;
  readonly questions: readonly Question[];
}

export interface Answer {
  readonly name: string;
  readonly type: number;
  readonly ttl: number;
  /** For A records: dotted IPv4. */
  readonly address: string;
}

export interface Response {
  readonly id: number;
  readonly rcode: number;
  readonly recursionDesired: boolean;
  readonly questions: readonly Question[];
  readonly answers: readonly Answer[];
}

/** Thrown for malformed messages; the server answers FORMERR when the id is readable. */
export class DnsFormatError extends Error {}

function readName(buf: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = start;
  let end = -1;
  for (let jumps = 0; jumps < 64; jumps++) {
    if (pos >= buf.length) throw new DnsFormatError("name runs past the end of the message");
    const len = buf[pos] ?? 0;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { name: labels.join(".").toLowerCase(), end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError("truncated compression pointer");
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | (buf[pos + 1] ?? 0);
      continue;
    }
    if ((len & 0xc0) !== 0) throw new DnsFormatError(`unsupported label type 0x${len.toString(16)}`);
    if (pos + 1 + len > buf.length) throw new DnsFormatError("label runs past the end of the message");
    labels.push(buf.toString("latin1", pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new DnsFormatError("too many compression pointers");
}

/** Decodes a query's header and questions (other sections are ignored). */
export function decodeQuery(buf: Buffer): Query {
  if (buf.length < 12) throw new DnsFormatError(`message of ${buf.length} bytes is shorter than a DNS header`);
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const qd = buf.readUInt16BE(4);
  const questions: Question[] = [];
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const { name, end } = readName(buf, pos);
    if (end + 4 > buf.length) throw new DnsFormatError("question runs past the end of the message");
    questions.push({ name, type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) });
    pos = end + 4;
  }
  return { id, opcode: (flags >> 11) & 0xf, recursionDesired: (flags & 0x0100) !== 0, questions };
}

function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split(".").filter((l) => l !== "")) {
    const b = Buffer.from(label, "latin1");
    if (b.length > 63) throw new DnsFormatError(`label "${label}" is longer than 63 bytes`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function encodeAddress(address: string): Buffer {
  const octets = address.split(".").map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new DnsFormatError(`"${address}" is not an IPv4 address`);
  }
  return Buffer.from(octets);
}

/** Encodes an authoritative response (QR, AA set; RA clear: this server never recurses). */
export function encodeResponse(r: Response): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(r.id, 0);
  header.writeUInt16BE(0x8000 | 0x0400 | (r.recursionDesired ? 0x0100 : 0) | (r.rcode & 0xf), 2);
  header.writeUInt16BE(r.questions.length, 4);
  header.writeUInt16BE(r.answers.length, 6);
  const parts: Buffer[] = [header];
  for (const q of r.questions) {
    const tail = Buffer.alloc(4);
    tail.writeUInt16BE(q.type, 0);
    tail.writeUInt16BE(q.class, 2);
    parts.push(encodeName(q.name), tail);
  }
  for (const a of r.answers) {
    const rdata = encodeAddress(a.address);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(a.type, 0);
    fixed.writeUInt16BE(1, 2);
    fixed.writeUInt32BE(a.ttl, 4);
    fixed.writeUInt16BE(rdata.length, 8);
    parts.push(encodeName(a.name), fixed, rdata);
  }
  return Buffer.concat(parts);
}

/** Encodes a query (used by tests and health checks). */
export function encodeQuery(q: { id: number; name: string; type: number }): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(q.type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(q.name), tail]);
}

/** Decodes a response's header and A answers (for tests and clients of this server). */
export function decodeResponse(buf: Buffer): { id: number; rcode: number; answers: Answer[] } {
  const q = decodeQuery(buf);
  const an = buf.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < q.questions.length; i++) pos = readName(buf, pos).end + 4;
  const answers: Answer[] = [];
  for (let i = 0; i < an; i++) {
    const { name, end } = readName(buf, pos);
    if (end + 10 > buf.length) throw new DnsFormatError("answer runs past the end of the message");
    const type = buf.readUInt16BE(end);
    const ttl = buf.readUInt32BE(end + 4);
    const len = buf.readUInt16BE(end + 8);
    const data = buf.subarray(end + 10, end + 10 + len);
    answers.push({ name, type, ttl, address: type === RecordType.A ? [...data].join(".") : data.toString("hex") });
    pos = end + 10 + len;
  }
  return { id: q.id, rcode: buf.readUInt16BE(2) & 0xf, answers };
}
