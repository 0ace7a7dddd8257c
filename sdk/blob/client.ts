// Fetches content-addressed blobs from several peers: each blob is tried peer after peer (starting
// at a different peer per blob to spread load) with a per-attempt timeout and a few rounds of
// retries; the first copy whose sha256 matches wins. Bytes are hashed as they arrive and go to a
// `BlobSink` (`fetchBlobTo`: the loader writes data shards straight to their place in the weights)
// or to `<dir>/.<hash>.partial`, renamed to `<dir>/<hash>` once whole and verified (`fetchBlob`).
// A failed attempt resumes from the bytes already held with a Range request (for `fetchBlob` also
// after a restart of the process); a copy that does not hash right starts over. Many blobs are
// fetched with bounded parallelism (`fetchBlobs`). Peers are read with sdk/blob/receive.ts.
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
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
  // A partial download left by an earlier attempt or process is resumed (re-hashed first).
  const held = await partialState(partial);
  const progress: Progress = { received: held.size, digest: held.hash };
  const file = await open(partial, held.size > 0 ? "r+" : "w+");
  try {
    // No fsync: a blob is only ever trusted after hashing it (one found on disk is re-hashed above,
    // a partial one too), so a crash that tears it costs a download, never a wrong blob.
    const sink: BlobSink = {
      write: async (chunks, position) => {
        await file.writev(chunks, position);
      },
      restart: () => {},
    };
    await fetchInto(hash, { maxBytes: settings.maxBytes }, sink, settings, options.peers, startAt, progress);
    // Bytes past the blob (left by an attempt that started over) would spoil it, or a resume.
    await file.truncate(progress.received);
  } catch (error) {
    // What was received and hashed stays for a resume; a download that started over leaves nothing.
    if (progress.received > 0) await file.truncate(progress.received).catch(() => {});
    await file.close();
    if (progress.received === 0) await rm(partial, { force: true });
    throw error;
  }
  await file.close();
  await rename(partial, target);
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

/**
 * The part of `chunks`, to be written at file offset `position`, that lies before `limit` (a
 * shard's zero padding past the weights' end is not written).
 */
export function clipChunks(chunks: readonly Buffer[], position: number, limit: number): readonly Buffer[] {
  const kept: Buffer[] = [];
  let at = position;
  for (const chunk of chunks) {
    if (at >= limit) break;
    kept.push(at + chunk.length <= limit ? chunk : chunk.subarray(0, limit - at));
    at += chunk.length;
  }
  return kept;
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

/** What a fetch holds so far: the bytes handed to the hash (and the sink), and their hash. */
interface Progress {
  received: number;
  digest: Hash;
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
  const progress: Progress = { received: 0, digest: createHash("sha256") };
  await fetchInto(hash, { size, maxBytes: size }, sink, settingsOf(options), options.peers, startAt, progress);
}

/**
 * The fetch behind both: peer after peer until the sink holds the blob (of `size` bytes when
 * given, at most `maxBytes`), resuming from `progress` (updated as bytes arrive, so a caller can
 * tell what is held after a failure). A sink failure ends it at once as a BlobSinkError.
 */
async function fetchInto(
  hash: string,
  expected: { size?: number; maxBytes: number },
  sink: BlobSink,
  settings: Settings,
  peers: readonly string[],
  startAt: number,
  progress: Progress,
): Promise<void> {
  // Where the next bytes go in the sink (each attempt starts at what `received` held then).
  let stored = 0;
  const restart = () => {
    progress.received = 0;
    progress.digest = createHash("sha256");
    stored = 0;
    sink.restart();
  };
  const check = () => {
    const actual = progress.digest.digest("hex"); // a failed check restarts with a new digest
    if (actual !== hash) {
      restart();
      throw new AttemptError(`content hashes to ${actual}`);
    }
    if (expected.size !== undefined && progress.received !== expected.size) {
      const got = progress.received;
      restart();
      throw new AttemptError(`blob has ${got} bytes, expected ${expected.size}`);
    }
  };
  const attemptOne = async (peer: string) => {
    const have = progress.received;
    stored = have;
    let oversize = false;
    try {
      await receiveBlob(
        new URL(`${peer.replace(/\/$/, "")}/blob/${hash}`),
        have > 0 ? { range: `bytes=${have}-` } : {},
        AbortSignal.timeout(settings.timeoutMs),
        {
          head: ({ status, contentRange }) => {
            // 416 to a resume: the bytes held may already be the whole blob (checked below).
            if (status === 416 && have > 0) return false;
            if (status !== 200 && status !== 206) throw new AttemptError(`HTTP ${status}`);
            if (status === 200) restart();
            else if (!(contentRange ?? "").startsWith(`bytes ${have}-`)) {
              throw new AttemptError(`unexpected content-range ${contentRange ?? "(none)"}`);
            }
            return true;
          },
          received: (bytes) => {
            if (progress.received + bytes.length > expected.maxBytes) {
              oversize = true;
              throw new AttemptError(`blob exceeds ${expected.maxBytes} bytes`);
            }
            progress.digest.update(bytes);
            progress.received += bytes.length;
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
    check();
  };
  await fromPeers(hash, peers, settings, startAt, attemptOne);
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
