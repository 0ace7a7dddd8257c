// A pool of worker threads that fetch blobs into regions of files (fetch-worker.ts). A model load
// receives and sha256-hashes every shard byte; on one thread that is the load's bottleneck, so the
// loader spreads its shard downloads over a worker per core (bench:manifest). Starting a worker
// costs ~0.1 s here, so a process keeps one pool (`sharedFetchPool`) for all its loads; its threads
// hold the process open only while they have work.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { BlobFetchError, BlobSinkError, type FetchOptions } from "./client.ts";
import type { FetchJob, FetchOutcome } from "./fetch-worker.ts";

/** Where a fetched blob goes: its byte p at `offset + p` of `path`, bytes from `limit` on dropped. */
export interface FileRegion {
  path: string;
  offset: number;
  limit: number;
}

interface Pending {
  resolve: () => void;
  reject: (error: unknown) => void;
  slot: Slot;
}

interface Slot {
  worker: Worker;
  jobs: number;
}

export class BlobFetchPool {
  readonly #slots: Slot[];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;
  /** Set once a worker died: the pool refuses new work (sharedFetchPool then starts a new one). */
  #broken = false;

  /** Starts `size` workers (default: one per core, at most 4). */
  constructor(size = Math.min(4, availableParallelism())) {
    this.#slots = Array.from({ length: Math.max(1, size) }, () => {
      const slot: Slot = { worker: new Worker(new URL("./fetch-worker.ts", import.meta.url)), jobs: 0 };
      slot.worker.on("message", (outcome: FetchOutcome) => this.#settle(outcome));
      const fail = (error: unknown) => {
        this.#broken = true;
        for (const [id, job] of this.#pending) {
          if (job.slot !== slot) continue;
          this.#pending.delete(id);
          job.reject(new Error("a blob fetch worker stopped", { cause: error }));
        }
        void this.close();
      };
      slot.worker.on("error", fail);
      slot.worker.on("exit", (code) => fail(new Error(`exit code ${code}`)));
      slot.worker.unref(); // after the listeners: adding one refs the worker's port again
      return slot;
    });
  }

  get usable(): boolean {
    return !this.#closed && !this.#broken;
  }

  #settle(outcome: FetchOutcome) {
    const job = this.#pending.get(outcome.id);
    if (job === undefined) return;
    this.#pending.delete(outcome.id);
    if (--job.slot.jobs === 0) job.slot.worker.unref();
    if (outcome.ok) return job.resolve();
    if (outcome.kind === "fetch") return job.reject(new BlobFetchError(outcome.hash, outcome.failures));
    if (outcome.kind === "sink") {
      return job.reject(new BlobSinkError(outcome.hash, { cause: new Error(outcome.message) }));
    }
    job.reject(new Error(outcome.message));
  }

  /**
   * `fetchBlobTo` into `region` on the least busy worker: resolves once the region holds the
   * verified blob, rejects with a BlobFetchError (no peer had it) or a BlobSinkError (the file could
   * not be written).
   */
  fetchToFile(
    hash: string,
    size: number,
    region: FileRegion,
    options: Omit<FetchOptions, "dir" | "maxBytes">,
    startAt = 0,
  ): Promise<void> {
    if (!this.usable) return Promise.reject(new Error("the blob fetch pool is closed or lost a worker"));
    const slot = this.#slots.reduce((least, s) => (s.jobs < least.jobs ? s : least));
    const id = this.#nextId++;
    const job: FetchJob = { id, hash, size, ...region, options: { ...options, peers: [...options.peers] }, startAt };
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, slot });
      if (slot.jobs++ === 0) slot.worker.ref();
      slot.worker.postMessage(job);
    });
  }

  /** Stops the workers (idempotent); fetches still running are rejected. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }
}

let shared: BlobFetchPool | null = null;

/** This process's pool, started on first use (and again if a worker of it died). */
export function sharedFetchPool(): BlobFetchPool {
  if (shared === null || !shared.usable) shared = new BlobFetchPool();
  return shared;
}
