// A fetch worker (see fetch-pool.ts): runs `fetchBlobTo` into a region of a file for the pool's
// thread, so receiving and hashing shards runs on as many cores as there are workers.
import { open } from "node:fs/promises";
import { parentPort } from "node:worker_threads";
import { BlobFetchError, BlobSinkError, clipChunks, fetchBlobTo, type BlobSink, type FetchOptions } from "./client.ts";

export interface FetchJob {
  id: number;
  hash: string;
  size: number;
  /** The file receives the blob's byte p at `offset + p`... */
  path: string;
  offset: number;
  /** ...for the blob bytes before `limit` (the file's end): later ones are padding, not written. */
  limit: number;
  options: Omit<FetchOptions, "dir" | "maxBytes">;
  startAt: number;
}

export type FetchOutcome =
  | { id: number; ok: true }
  | { id: number; ok: false; kind: "fetch"; hash: string; failures: BlobFetchError["failures"] }
  | { id: number; ok: false; kind: "sink"; hash: string; message: string }
  | { id: number; ok: false; kind: "other"; message: string };

async function run(job: FetchJob): Promise<FetchOutcome> {
  const file = await open(job.path, "r+").catch((error: unknown) => {
    throw new BlobSinkError(job.hash, { cause: error });
  });
  try {
    const sink: BlobSink = {
      write: async (chunks, position) => {
        const kept = clipChunks(chunks, job.offset + position, job.limit);
        if (kept.length > 0) await file.writev(kept, job.offset + position);
      },
      // Bytes written before a restart are overwritten by the blob's own bytes at the same places.
      restart: () => {},
    };
    await fetchBlobTo(job.hash, job.size, sink, job.options, job.startAt);
    return { id: job.id, ok: true };
  } finally {
    await file.close();
  }
}

parentPort!.on("message", (job: FetchJob) => {
  run(job).then(
    (outcome) => parentPort!.postMessage(outcome),
    (error: unknown) => {
      const outcome: FetchOutcome =
        error instanceof BlobFetchError
          ? { id: job.id, ok: false, kind: "fetch", hash: error.hash, failures: error.failures }
          : error instanceof BlobSinkError
            ? {
                id: job.id,
                ok: false,
                kind: "sink",
                hash: error.hash,
                message: String((error.cause as Error)?.message ?? error.cause),
              }
            : {
                id: job.id,
                ok: false,
                kind: "other",
                message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
              };
      parentPort!.postMessage(outcome);
    },
  );
});
