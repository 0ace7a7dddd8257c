// Receives one blob from a peer over HTTP/1.1 straight into reusable batch buffers.
//
// Why not node:http here: its client allocates a fresh Buffer for every socket read and pushes each
// one through a Readable stream. On a model load that costs more CPU than everything but the
// hashing (bench:manifest: ~130 ms of a ~450 ms load of 256 MiB on this machine), and the loader's
// throughput target is set against single-core sha256. Here the kernel copies each read into the
// batch buffer that then goes to disk, and the buffers are reused once stored, so the steady state
// allocates nothing.
//
// It speaks only what a blob peer (sdk/blob/server.ts) answers to one GET: a status line, a head of
// at most MAX_HEAD_BYTES, a body of exactly `content-length` bytes (no chunked encoding, no
// keep-alive: the request says `connection: close`). Anything else from a peer is a
// BlobResponseError and the caller tries another peer.
import { connect } from "node:net";

/** A response head larger than this is refused (ours are ~200 bytes). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Bytes handed to `store` at once: fewer, larger disk writes than one per socket read. */
export const BATCH_BYTES = 1024 * 1024;
/** Reading from the socket pauses once the stores in flight hold this many bytes (or one batch more). */
export const PENDING_BYTES = 8 * 1024 * 1024;

/** A peer's answer that is not one the blob protocol allows. */
export class BlobResponseError extends Error {
  override name = "BlobResponseError";
}

/** `store` failed (a disk error): not the peer's fault, so callers should not try another peer. */
export class BlobStoreError extends Error {
  override name = "BlobStoreError";

  constructor(options: ErrorOptions) {
    super("storing received bytes failed", options);
  }
}

export interface BlobResponseHead {
  status: number;
  /** Body length; 0 when an answer without a body (an error status) does not say. */
  contentLength: number;
  contentRange: string | undefined;
}

const printable = (text: string) => JSON.stringify(text.slice(0, 80));

/** Parses a response head (the bytes before the blank line), as strictly as the blob protocol allows. */
export function parseResponseHead(head: string): BlobResponseHead {
  const [statusLine = "", ...lines] = head.split("\r\n");
  const status = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?$/.exec(statusLine);
  if (status === null) throw new BlobResponseError(`not an HTTP/1.1 status line: ${printable(statusLine)}`);
  let contentLength: number | undefined;
  let contentRange: string | undefined;
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new BlobResponseError(`malformed header line ${printable(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && Number(value) !== contentLength)) {
        throw new BlobResponseError(`bad content-length ${printable(value)}`);
      }
      contentLength = Number(value);
    } else if (name === "content-range") {
      contentRange = value;
    } else if (name === "transfer-encoding") {
      throw new BlobResponseError(`transfer-encoding ${printable(value)}: blob peers send a content-length`);
    }
  }
  const code = Number(status[1]);
  if (contentLength === undefined && (code === 200 || code === 206)) {
    throw new BlobResponseError(`HTTP ${code} without a content-length`);
  }
  return { status: code, contentLength: contentLength ?? 0, contentRange };
}

export interface BlobBodyHandler {
  /** The response head: return true to receive the body, false to stop there. May throw to refuse it. */
  head(head: BlobResponseHead): boolean;
  /**
   * The next body bytes, in order, as they are read (a view valid only during the call). Throwing
   * refuses them: they are not stored and the receive ends with that error.
   */
  received(bytes: Buffer): void;
  /**
   * Stores the next body bytes (consecutive: every byte `received` accepted, once, in order). The
   * buffer is reused once the returned promise settles: copy what must outlive it.
   */
  store(batch: Buffer): Promise<void>;
}

/**
 * GETs `url` with `headers` and feeds the response to `handler`. Resolves once the whole body was
 * received and stored; rejects with the first error (a BlobStoreError when `store` failed) after
 * every byte accepted by `received` was stored, so a caller can resume from there.
 */
export function receiveBlob(
  url: URL,
  headers: Readonly<Record<string, string>>,
  signal: AbortSignal,
  handler: BlobBodyHandler,
): Promise<void> {
  if (url.protocol !== "http:") {
    return Promise.reject(new BlobResponseError(`peer URL ${url.href} is not http:`));
  }
  return new Promise((resolve, reject) => {
    const spare: Buffer[] = [];
    let batch: Buffer = Buffer.allocUnsafeSlow(BATCH_BYTES);
    let filled = 0;
    // The body bytes of `batch` that `received` accepted: [bodyStart, accepted). Only those are
    // stored; head bytes (before bodyStart) and refused ones never are.
    let bodyStart = 0;
    let accepted = 0;
    let headDone = false;
    let bodyLength = 0;
    let bodyReceived = 0;
    let pending = 0;
    const stores = new Set<Promise<void>>();
    let storeError: unknown = null;
    let finished = false;

    const submit = () => {
      if (accepted > bodyStart && storeError === null) {
        const full = batch;
        const bytes = accepted - bodyStart;
        const stored = handler.store(full.subarray(bodyStart, accepted)).then(
          () => {
            stores.delete(stored);
            pending -= bytes;
            spare.push(full);
            if (socket.isPaused() && pending < PENDING_BYTES && !finished) socket.resume();
          },
          (error: unknown) => {
            stores.delete(stored);
            storeError ??= error;
            finish(null);
          },
        );
        stores.add(stored);
        pending += bytes;
        batch = spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
      }
      filled = 0;
      bodyStart = 0;
      accepted = 0;
      if (pending >= PENDING_BYTES) socket.pause();
    };

    const finish = (error: unknown) => {
      if (finished) return;
      finished = true;
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      submit();
      // No store starts after this point (submit above was the last), so these are all of them.
      void Promise.allSettled([...stores]).then(() => {
        if (storeError !== null) reject(new BlobStoreError({ cause: storeError }));
        else if (error !== null) reject(error);
        else resolve();
      });
    };

    const onBody = (from: number) => {
      const bytes = batch.subarray(from, filled);
      if (bodyReceived + bytes.length > bodyLength) {
        throw new BlobResponseError(`peer sent more than the ${bodyLength} bytes it announced`);
      }
      handler.received(bytes);
      bodyReceived += bytes.length;
      accepted = filled;
    };

    const onRead = (bytesRead: number) => {
      if (finished) return false;
      const before = filled;
      filled += bytesRead;
      try {
        if (!headDone) {
          const end = batch.subarray(0, filled).indexOf("\r\n\r\n", Math.max(0, before - 3));
          if (end < 0) {
            if (filled >= MAX_HEAD_BYTES) throw new BlobResponseError(`response head exceeds ${MAX_HEAD_BYTES} bytes`);
            return true;
          }
          headDone = true;
          bodyStart = end + 4;
          accepted = bodyStart;
          const head = parseResponseHead(batch.toString("latin1", 0, end));
          bodyLength = head.contentLength;
          if (!handler.head(head)) {
            finish(null);
            return false;
          }
          onBody(bodyStart);
        } else {
          onBody(before);
        }
      } catch (error) {
        finish(error);
        return false;
      }
      if (bodyReceived === bodyLength) {
        finish(null);
        return false;
      }
      if (filled === batch.length) submit();
      return true;
    };

    const socket = connect({
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(url.port || 80),
      onread: { buffer: () => batch.subarray(filled), callback: onRead },
    });
    const onAbort = () => finish(signal.reason ?? new Error("aborted"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("connect", () => {
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, "connection: close"];
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
    socket.on("error", (error) => finish(error));
    socket.on("close", () => {
      if (!headDone) finish(new BlobResponseError("connection closed before a response head"));
      else finish(new BlobResponseError(`connection closed after ${bodyReceived} of ${bodyLength} body bytes`));
    });
  });
}
