// Content-addressed blob server: blobs are named by their sha256 (64 lowercase hex characters).
//
//   GET  /blob/:hash   the blob, streamed; single byte ranges (206 / 416); HEAD too
//   PUT  /blob/:hash   stores the body only if its sha256 is :hash (422 otherwise), within the size
//                      limit (413); 201 when stored, 200 when it was already there
//
// Disk layout: <dir>/<hash> for complete blobs and <dir>/.incoming/ for uploads in progress.
// An upload is written to .incoming, fsynced, and renamed into place once its hash matched, so
// a crash never leaves a half blob under a hash name; leftovers in .incoming are removed at start.
// Bad requests get 4xx answers; a 5xx means a fault of the server itself (a disk error).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { isHexHash } from "../manifest/hash.ts";

export const DEFAULT_MAX_BLOB_BYTES = 4 * 1024 ** 3;
const INCOMING = ".incoming";
/** Read size when streaming a blob out (the default 64 KiB costs throughput on large shards). */
const READ_CHUNK_BYTES = 1024 * 1024;
const BLOB_PATH = /^\/blob\/([^/?#]*)$/;

export interface BlobServerOptions {
  /** Directory holding the blobs (created when missing). */
  dir: string;
  /** Largest blob accepted by PUT, in bytes. */
  maxBlobBytes?: number;
  /** Interface to listen on; 127.0.0.1 unless told otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface BlobServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export type ByteRange = { start: number; end: number } | "unsatisfiable" | null;

/**
 * Parses a Range header against a blob of `size` bytes: an inclusive range, "unsatisfiable", or
 * null when the header is absent, malformed or asks for several ranges (then the whole blob is sent).
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, first, last] = match;
  if (first === "" && last === "") return null;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0) return "unsatisfiable";
    return size === 0 ? "unsatisfiable" : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return null;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

function send(res: ServerResponse, status: number, message: string) {
  const body = JSON.stringify({ error: message }) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

async function handleGet(req: IncomingMessage, res: ServerResponse, path: string, hash: string) {
  const size = await sizeOf(path);
  if (size === null) return send(res, 404, "no such blob");
  const headers = { "accept-ranges": "bytes", etag: `"${hash}"`, "content-type": "application/octet-stream" };
  const range = parseRange(req.headers.range, size);
  if (range === "unsatisfiable") {
    res.writeHead(416, { ...headers, "content-range": `bytes */${size}` });
    return res.end();
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  const length = size === 0 ? 0 : end - start + 1;
  res.writeHead(range ? 206 : 200, {
    ...headers,
    "content-length": length,
    ...(range ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === "HEAD" || length === 0) return res.end();
  const stream = createReadStream(path, { start, end, highWaterMark: READ_CHUNK_BYTES });
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}

async function handlePut(req: IncomingMessage, res: ServerResponse, dir: string, hash: string, max: number) {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > max) {
    res.setHeader("connection", "close");
    return send(res, 413, `blob larger than ${max} bytes`);
  }
  const temporary = join(dir, INCOMING, `${hash}.${randomBytes(6).toString("hex")}`);
  const file = await open(temporary, "w");
  const digest = createHash("sha256");
  let received = 0;
  let refused: [number, string] | null = null;
  try {
    // destroyOnReturn: false keeps the socket open to answer 413 after an early stop.
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > max) {
        refused = [413, `blob larger than ${max} bytes`];
        break;
      }
      digest.update(chunk);
      await file.write(chunk);
    }
    if (refused === null) {
      const actual = digest.digest("hex");
      if (actual !== hash) refused = [422, `body hashes to ${actual}, not ${hash}`];
    }
    if (refused === null) await file.sync();
  } finally {
    await file.close();
  }
  if (refused !== null) {
    await rm(temporary, { force: true });
    res.setHeader("connection", "close");
    return send(res, refused[0], refused[1]);
  }
  const existed = (await sizeOf(join(dir, hash))) !== null;
  await rename(temporary, join(dir, hash));
  const body = JSON.stringify({ hash, size: received }) + "\n";
  res.writeHead(existed ? 200 : 201, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Starts a blob server; resolves once it listens. */
export async function startBlobServer(options: BlobServerOptions): Promise<BlobServer> {
  const dir = options.dir;
  const max = options.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
  await rm(join(dir, INCOMING), { recursive: true, force: true });
  await mkdir(join(dir, INCOMING), { recursive: true });

  const server = createServer((req, res) => {
    const match = BLOB_PATH.exec(req.url ?? "");
    if (!match) return send(res, 404, "unknown path: use /blob/<sha256>");
    const hash = match[1]!;
    if (!isHexHash(hash)) return send(res, 400, "a blob name is a sha256 in 64 lowercase hex characters");
    const path = join(dir, hash);
    const handled =
      req.method === "GET" || req.method === "HEAD"
        ? handleGet(req, res, path, hash)
        : req.method === "PUT"
          ? handlePut(req, res, dir, hash, max)
          : Promise.resolve(send(res, 405, `method ${req.method} not allowed`));
    handled.catch(() => {
      if (!res.headersSent) send(res, 500, "blob store failure");
      else res.destroy();
    });
  });
  server.requestTimeout = 10 * 60 * 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
