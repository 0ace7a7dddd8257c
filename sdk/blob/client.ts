// Fetches content-addressed blobs from several peers: each blob is tried peer after peer (starting
// at a different peer per blob to spread load) with a per-attempt timeout and a few rounds of
// retries; the first copy whose sha256 matches wins. Downloads land in `<dir>/.<hash>.partial`
// and resume from there with a Range request (after any failure, or after a restart), then are
// renamed to `<dir>/<hash>`. Many blobs are fetched with bounded parallelism.
//
// `fetchBlobTo` is the same over a caller's `BlobSink` instead of a blob file (the loader writes
// data shards straight to their place in the weights and parity shards to scratch files): bytes go
// to the sink as they arrive, hashed on the way, a failed attempt resumes from the bytes already
// held, and a copy that does not hash right starts over.
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { get as httpGet, type IncomingMessage } from "node:http";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { isHexHash } from "../manifest/hash.ts";

export interface FetchOptions {
  /** Peer base URLs, e.g. http://127.0.0.1:41234 */
  peers: readonly string[];
  /** Directory that receives `<hash>`. */
  dir: string;
  /** Milliseconds one attempt (one peer, one request) may take. */
  timeoutMs?: number;
  /** Rounds over all peers before giving up. */
  rounds?: number;
  /** Refuse blobs larger than this many bytes. */
  maxBytes?: number;
  /** Milliseconds to wait between rounds. */
  retryDelayMs?: number;
}

export interface PeerFailure {
  peer: string;
  reason: string;
}

export class BlobFetchError extends Error {
  readonly hash: string;
  readonly failures: readonly PeerFailure[];

  constructor(hash: string, failures: readonly PeerFailure[], options?: ErrorOptions) {
    super(`could not fetch blob ${hash} from any peer (${failures.length} attempts failed)`, options);
    this.name = "BlobFetchError";
    this.hash = hash;
    this.failures = failures;
  }
}

class AttemptError extends Error {
  override name = "AttemptError";
}

async function hashFile(path: string): Promise<{ hash: Hash; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hash, size };
}

async function partialState(path: string): Promise<{ hash: Hash; size: number }> {
  try {
    await stat(path);
  } catch {
    return { hash: createHash("sha256"), size: 0 };
  }
  return hashFile(path);
}

/** One attempt against one peer; returns when `partial` holds the whole blob with the right hash. */
/** GET over node:http (about twice the loopback throughput of fetch here); the signal bounds the whole attempt. */
function get(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { headers, signal }, resolve);
    request.on("error", reject);
  });
}

/** Bytes gathered before each disk write: fewer, larger writes than one per socket chunk. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** One attempt against one peer; returns when `partial` holds the whole blob with the right hash. */
async function attempt(
  peer: string,
  hash: string,
  partial: string,
  options: Required<Omit<FetchOptions, "peers" | "dir">>,
) {
  let { hash: digest, size: have } = await partialState(partial);
  const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
  const response = await get(
    `${peer.replace(/\/$/, "")}/blob/${hash}`,
    headers,
    AbortSignal.timeout(options.timeoutMs),
  );
  const status = response.statusCode ?? 0;
  if (status === 416 && have > 0) {
    response.resume();
    if (digest.copy().digest("hex") === hash) return;
    await rm(partial, { force: true });
    throw new AttemptError("partial download did not match; restarting");
  }
  if (status !== 200 && status !== 206) {
    response.resume();
    throw new AttemptError(`HTTP ${status}`);
  }
  const append = status === 206;
  const contentRange = response.headers["content-range"] ?? "";
  if (append && !contentRange.startsWith(`bytes ${have}-`)) {
    response.destroy();
    throw new AttemptError(`unexpected content-range ${contentRange}`);
  }
  if (!append) {
    digest = createHash("sha256");
    have = 0;
  }
  const file = await open(partial, append ? "a" : "w");
  let oversize = false;
  try {
    let batch: Buffer[] = [];
    let batched = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      have += chunk.length;
      if (have > options.maxBytes) {
        oversize = true;
        response.destroy();
        break;
      }
      digest.update(chunk);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WRITE_BATCH_BYTES) {
        await file.writev(batch);
        batch = [];
        batched = 0;
      }
    }
    if (!oversize && batched > 0) await file.writev(batch);
    // No fsync: a blob is only ever trusted after hashing it (fetchBlob re-hashes a blob it finds
    // on disk, a resume re-hashes the partial file), so a crash that tears it costs a download,
    // never a wrong blob; forcing every shard to disk would double the cost of a load.
  } finally {
    await file.close();
  }
  if (oversize) {
    await rm(partial, { force: true });
    throw new AttemptError(`blob exceeds ${options.maxBytes} bytes`);
  }
  const actual = digest.digest("hex");
  if (actual !== hash) {
    await rm(partial, { force: true });
    throw new AttemptError(`content hashes to ${actual}`);
  }
}

type Settings = Required<Omit<FetchOptions, "peers" | "dir">>;

function settingsOf(options: Omit<FetchOptions, "dir">): Settings {
  return {
    timeoutMs: options.timeoutMs ?? 30_000,
    rounds: options.rounds ?? 3,
    maxBytes: options.maxBytes ?? Number.MAX_SAFE_INTEGER,
    retryDelayMs: options.retryDelayMs ?? 200,
  };
}

/** Runs `attemptOne` peer after peer (from `startAt`) for the configured rounds until one succeeds. */
async function fromPeers(
  hash: string,
  peers: readonly string[],
  settings: Settings,
  startAt: number,
  attemptOne: (peer: string) => Promise<void>,
): Promise<void> {
  const failures: PeerFailure[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, settings.retryDelayMs));
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[(startAt + i) % peers.length]!;
      try {
        await attemptOne(peer);
        return;
      } catch (error) {
        if (error instanceof BlobSinkError) throw error;
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        failures.push({ peer, reason });
      }
    }
  }
  throw new BlobFetchError(hash, failures);
}

/** Fetches one blob into `<dir>/<hash>` and returns that path. */
export async function fetchBlob(hash: string, options: FetchOptions, startAt = 0): Promise<string> {
  if (!isHexHash(hash)) throw new TypeError(`not a blob hash: ${JSON.stringify(hash)}`);
  if (options.peers.length === 0) throw new BlobFetchError(hash, []);
  const settings = settingsOf(options);
  await mkdir(options.dir, { recursive: true });
  const target = join(options.dir, hash);
  try {
    const existing = await hashFile(target);
    if (existing.hash.digest("hex") === hash) return target;
  } catch {
    // absent: fetch it
  }
  const partial = join(options.dir, `.${hash}.partial`);
  await fromPeers(hash, options.peers, settings, startAt, async (peer) => {
    await attempt(peer, hash, partial, settings);
    await rename(partial, target);
  });
  return target;
}

/**
 * Where `fetchBlobTo` puts a blob's bytes as they arrive, before the blob is verified (like the
 * `.partial` file of `fetchBlob`): nothing may treat them as the blob until `fetchBlobTo` resolved.
 */
export interface BlobSink {
  /** Stores `chunks` (in order) at byte `position` of the blob; positions only ever grow, except after `restart`. */
  write(chunks: readonly Buffer[], position: number): Promise<void>;
  /** The next bytes start the blob over from position 0. */
  restart(): void;
}

/** A failure of the sink itself (a disk error): ends the fetch at once instead of trying other peers. */
export class BlobSinkError extends Error {
  readonly hash: string;

  constructor(hash: string, options?: ErrorOptions) {
    super(`could not store blob ${hash}`, options);
    this.name = "BlobSinkError";
    this.hash = hash;
  }
}

/** Bytes passed to the sink at once: fewer, larger writes than one per socket chunk. */
const SINK_BATCH_BYTES = 1024 * 1024;
/** Bytes the sink may have pending before the response is paused. */
const SINK_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Fetches one blob of exactly `size` bytes into `sink`, hashing it as it arrives, with the same peer
 * order, timeouts, rounds and Range resumption as `fetchBlob`. Resolves once the sink holds exactly
 * the blob whose sha256 is `hash` (and every write settled); a larger body is refused.
 */
export async function fetchBlobTo(
  hash: string,
  size: number,
  sink: BlobSink,
  options: Omit<FetchOptions, "dir" | "maxBytes">,
  startAt = 0,
): Promise<void> {
  if (!isHexHash(hash)) throw new TypeError(`not a blob hash: ${JSON.stringify(hash)}`);
  if (options.peers.length === 0) throw new BlobFetchError(hash, []);
  const settings = settingsOf(options);
  // Bytes handed to the hash and the sink so far (a resume asks for the rest).
  let received = 0;
  let digest = createHash("sha256");
  const restart = () => {
    received = 0;
    digest = createHash("sha256");
    sink.restart();
  };
  const check = () => {
    const actual = digest.digest("hex");
    if (actual !== hash) {
      restart();
      throw new AttemptError(`content hashes to ${actual}`);
    }
    if (received !== size) {
      const got = received;
      restart();
      throw new AttemptError(`blob has ${got} bytes, expected ${size}`);
    }
  };
  const attemptOne = async (peer: string) => {
    const have = received;
    const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
    const response = await get(
      `${peer.replace(/\/$/, "")}/blob/${hash}`,
      headers,
      AbortSignal.timeout(settings.timeoutMs),
    );
    const status = response.statusCode ?? 0;
    if (status === 416 && have > 0) {
      response.resume();
      return check();
    }
    if (status !== 200 && status !== 206) {
      response.resume();
      throw new AttemptError(`HTTP ${status}`);
    }
    if (status === 206) {
      const contentRange = response.headers["content-range"] ?? "";
      if (!contentRange.startsWith(`bytes ${have}-`)) {
        response.destroy();
        throw new AttemptError(`unexpected content-range ${contentRange}`);
      }
    } else {
      restart();
    }
    let oversize = false;
    let batch: Buffer[] = [];
    let batched = 0;
    let pending = 0;
    let sinkError: unknown = null;
    const writes = new Set<Promise<void>>();
    const flush = () => {
      if (batched === 0) return;
      const bytes = batched;
      const write = sink.write(batch, received - batched).then(
        () => {
          writes.delete(write);
          pending -= bytes;
          if (pending < SINK_PENDING_BYTES && response.isPaused() && !response.destroyed) response.resume();
        },
        (error: unknown) => {
          writes.delete(write);
          sinkError ??= error;
          response.destroy();
        },
      );
      writes.add(write);
      pending += bytes;
      batch = [];
      batched = 0;
      if (pending >= SINK_PENDING_BYTES) response.pause();
    };
    response.on("data", (chunk: Buffer) => {
      if (oversize || sinkError !== null) return;
      if (received + chunk.length > size) {
        oversize = true;
        response.destroy();
        return;
      }
      digest.update(chunk);
      received += chunk.length;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= SINK_BATCH_BYTES) flush();
    });
    let streamError: unknown = null;
    try {
      await finished(response);
    } catch (error) {
      streamError = error;
    }
    // Whatever happened, the sink ends up holding exactly the `received` bytes hashed so far.
    flush();
    while (writes.size > 0) await Promise.all(writes);
    if (sinkError !== null) throw new BlobSinkError(hash, { cause: sinkError });
    if (oversize) {
      restart();
      throw new AttemptError(`blob exceeds ${size} bytes`);
    }
    if (streamError !== null) throw streamError;
    check();
  };
  await fromPeers(hash, options.peers, settings, startAt, attemptOne);
}

/** Fetches many blobs with at most `concurrency` downloads at a time; resolves to their paths in order. */
export async function fetchBlobs(
  hashes: readonly string[],
  options: FetchOptions & { concurrency?: number },
): Promise<string[]> {
  const results: string[] = new Array<string>(hashes.length);
  let next = 0;
  const worker = async () => {
    while (next < hashes.length) {
      const index = next++;
      try {
        results[index] = await fetchBlob(hashes[index]!, options, index);
      } catch (error) {
        next = hashes.length; // stop the other workers from starting new downloads
        throw error;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, hashes.length)) }, worker);
  await Promise.all(workers);
  return results;
}
