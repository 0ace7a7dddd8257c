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
import { isHexHash } from "../manifest/hash.ts";
import { BlobStoreError, receiveBlob } from "./receive.ts";

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
  /**
   * Stores `chunks` (in order) at byte `position` of the blob; positions only ever grow, except
   * after `restart`. The chunks' memory is reused once the returned promise settles: copy to keep.
   */
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

/**
 * Fetches one blob of exactly `size` bytes into `sink`, hashing it as it arrives, with the same peer
 * order, timeouts, rounds and Range resumption as `fetchBlob`. Resolves once the sink holds exactly
 * the blob whose sha256 is `hash` (and every write settled); a larger body is refused. The bytes
 * come off the socket straight into the buffers handed to the sink (sdk/blob/receive.ts).
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
  // Bytes handed to the hash so far, and to the sink (a resume asks for the rest).
  let received = 0;
  let stored = 0;
  let digest = createHash("sha256");
  const restart = () => {
    received = 0;
    stored = 0;
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
    let oversize = false;
    try {
      await receiveBlob(
        new URL(`${peer.replace(/\/$/, "")}/blob/${hash}`),
        have > 0 ? { range: `bytes=${have}-` } : {},
        AbortSignal.timeout(settings.timeoutMs),
        {
          head: ({ status, contentRange }) => {
            if (status === 416 && have > 0) return false;
            if (status !== 200 && status !== 206) throw new AttemptError(`HTTP ${status}`);
            if (status === 200) restart();
            else if (!(contentRange ?? "").startsWith(`bytes ${have}-`)) {
              throw new AttemptError(`unexpected content-range ${contentRange ?? "(none)"}`);
            }
            return true;
          },
          received: (bytes) => {
            if (received + bytes.length > size) {
              oversize = true;
              throw new AttemptError(`blob exceeds ${size} bytes`);
            }
            digest.update(bytes);
            received += bytes.length;
          },
          store: (batch) => {
            const position = stored;
            stored += batch.length;
            return sink.write([batch], position);
          },
        },
      );
    } catch (error) {
      if (error instanceof BlobStoreError) throw new BlobSinkError(hash, { cause: error.cause });
      if (oversize) restart();
      throw error;
    }
    // A 416 to a resume means the partial copy was already whole (`complete`): it too must hash right.
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
