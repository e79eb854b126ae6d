/**
 * Durable storage for the object store: an append-only log of JSON lines, group-committed (all
 * records queued while one fdatasync runs share the next one), and now and then compacted into a
 * snapshot file. Nothing acknowledged is lost in a crash; a torn last line is dropped on load.
 */
import { constants } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../base/index.js";
import type { KubeObject } from "../api/types.js";

/** One logged write: `o` is the object stored under (r, k) at `rv`, or absent for a deletion. */
export interface WalRecord {
  rv: number;
  /** Store collection ("group/resource"). */
  r: string;
  /** "namespace/name". */
  k: string;
  o?: KubeObject;
}

/** What `load` found: every live object by collection and key, and the highest resourceVersion used. */
export interface LoadedState {
  rv: number;
  objects: Map<string, Map<string, KubeObject>>;
}

/** Produces the store's current content for a snapshot. */
export type SnapshotSource = () => { rv: number; entries: Iterable<{ r: string; k: string; json: string }> };

export interface WalOptions {
  dir: string;
  log: Logger;
  /** Records in the log after which it is folded into a new snapshot. */
  compactAfter?: number;
  snapshot: SnapshotSource;
}

const snapshotName = "snapshot.jsonl";
const logName = "log.jsonl";

/** The log of one store. `load()` first, then `append()`; `close()` waits for queued records. */
export class Wal {
  readonly #opts: WalOptions;
  #fh: FileHandle | undefined;
  #pending: { line: string; done: () => void; fail: (e: unknown) => void }[] = [];
  #flushing: Promise<void> | undefined;
  #records = 0;
  #closed = false;
  /** Bytes of the log known to hold whole records; a failed append is cut back to this. */
  #size = 0;

  constructor(opts: WalOptions) {
    this.#opts = opts;
  }

  /** Reads snapshot + log, truncating a torn final log line; opens the log for appending. */
  async load(): Promise<LoadedState> {
    const dir = this.#opts.dir;
    await mkdir(dir, { recursive: true });
    const objects = new Map<string, Map<string, KubeObject>>();
    let rv = 0;
    const put = (r: string, k: string, o: KubeObject | undefined) => {
      let m = objects.get(r);
      if (!m) {
        m = new Map();
        objects.set(r, m);
      }
      if (o) m.set(k, o);
      else m.delete(k);
    };
    const snapText = await readText(join(dir, snapshotName));
    let snapRv = 0;
    if (snapText !== undefined && snapText !== "") {
      const lines = snapText.split("\n");
      const header = JSON.parse(lines[0] ?? "{}") as { rv?: number; complete?: boolean };
      snapRv = header.rv ?? 0;
      for (const line of lines.slice(1)) {
        if (line === "") continue;
        const e = JSON.parse(line) as { r: string; k: string; o: KubeObject };
        put(e.r, e.k, e.o);
      }
      rv = snapRv;
    }
    const logPath = join(dir, logName);
    const logText = await readText(logPath);
    if (logText !== undefined) {
      let good = 0;
      let offset = 0;
      const lines = logText.split("\n");
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] ?? "";
        const isLast = i === lines.length - 1;
        if (line === "") {
          offset += 1;
          continue;
        }
        let rec: WalRecord;
        try {
          rec = JSON.parse(line) as WalRecord;
        } catch (err) {
          // Only the final record can be torn (a crash mid-append); anything else is corruption.
          if (isLast || lines.slice(i + 1).every((l) => l === "")) {
            this.#opts.log.warn("dropping a torn final record of the object log", {
              file: logPath,
              bytes: line.length,
            });
            break;
          }
          throw new Error(`object log ${logPath} is corrupt at line ${i + 1}: ${(err as Error).message}`);
        }
        if (isLast) {
          // A complete JSON value with no trailing newline: the append was cut right before "\n".
          offset += Buffer.byteLength(line);
          good = offset;
        } else {
          offset += Buffer.byteLength(line) + 1;
          good = offset;
        }
        this.#records++;
        if (rec.rv <= snapRv) continue;
        put(rec.r, rec.k, rec.o);
        if (rec.rv > rv) rv = rec.rv;
      }
      if (good < Buffer.byteLength(logText)) await truncate(logPath, good);
      if (good > 0 && !logText.slice(0, good).endsWith("\n")) {
        // Complete the record that lacked its newline, so the next append starts a new line.
        const fh = await open(logPath, "a");
        await fh.write("\n");
        await fh.datasync();
        await fh.close();
      }
    }
    const existed = logText !== undefined;
    this.#fh = await open(logPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT);
    this.#size = (await this.#fh.stat()).size;
    // A new log file must survive a crash as a directory entry too, before anything is acknowledged in it.
    if (!existed) await syncDir(dir);
    return { rv, objects };
  }

  /** Queues a record; resolves once it (and every record queued before it) is on disk. */
  append(rec: WalRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("object log is closed"));
    const line = `${JSON.stringify(rec)}\n`;
    return new Promise<void>((done, fail) => {
      this.#pending.push({ line, done, fail });
      if (!this.#flushing) this.#flushing = this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          const fh = this.#fh;
          if (!fh) throw new Error("object log is not open");
          const text = batch.map((p) => p.line).join("");
          await fh.write(text);
          await fh.datasync();
          this.#size += Buffer.byteLength(text);
          this.#records += batch.length;
        } catch (err) {
          // Cut off a partly written batch, so later records do not follow a torn one.
          await this.#fh?.truncate(this.#size).catch(() => undefined);
          this.#opts.log.error("object log write failed; the writes of this batch are refused", { err });
          for (const p of batch) p.fail(err);
          continue;
        }
        for (const p of batch) p.done();
        if (this.#records >= (this.#opts.compactAfter ?? 50_000)) {
          try {
            await this.compact();
          } catch (err) {
            this.#opts.log.error("object log compaction failed; the log keeps growing", { err });
          }
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Writes a snapshot of the store and empties the log. Safe with writes in flight: a snapshot that
   * already holds a record's effect replays it harmlessly, since records at or below its rv are skipped.
   */
  async compact(): Promise<void> {
    const dir = this.#opts.dir;
    const { rv, entries } = this.#opts.snapshot();
    const tmp = join(dir, `${snapshotName}.tmp`);
    const fh = await open(tmp, "w");
    try {
      let buf = `${JSON.stringify({ rv })}\n`;
      for (const e of entries) {
        buf += `{"r":${JSON.stringify(e.r)},"k":${JSON.stringify(e.k)},"o":${e.json}}\n`;
        if (buf.length > 1 << 20) {
          await fh.write(buf);
          buf = "";
        }
      }
      await fh.write(buf);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, snapshotName));
    await syncDir(dir);
    // Records appended from here on have rv > snapshot rv or are already inside it.
    await this.#fh?.truncate(0);
    await this.#fh?.datasync();
    this.#records = 0;
    this.#size = 0;
  }

  /** Waits for queued records, then closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
    await this.#fh?.close();
    this.#fh = undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Size of the log file in bytes (for tests and diagnostics). */
export async function logSize(dir: string): Promise<number> {
  try {
    return (await stat(join(dir, logName))).size;
  } catch {
    return 0;
  }
}

/** The log file's path inside a state folder. */
export const logPath = (dir: string): string => join(dir, logName);
