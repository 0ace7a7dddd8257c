// Uploads content-addressed blobs to blob-store peers: `PUT /blob/<sha256>` streamed from disk,
// with a progress callback. The peer checks the hash and refuses a wrong or oversize body, so a
// successful PUT means the peer holds exactly these bytes.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { request } from "node:http";

import { isHexHash } from "../manifest/hash.ts";

/** An upload a peer refused or that could not reach it. */
export class BlobUploadError extends Error {
  readonly peer: string;
  readonly hash: string;
  constructor(peer: string, hash: string, reason: string, options: { cause?: unknown } = {}) {
    super(`upload of blob ${hash} to ${peer} failed: ${reason}`, options);
    this.name = "BlobUploadError";
    this.peer = peer;
    this.hash = hash;
  }
}

export interface PutOptions {
  /** Called with the bytes of this blob sent so far. */
  onProgress?: (sent: number, size: number) => void;
  /** Milliseconds without an answer before the upload fails. */
  timeoutMs?: number;
}

/** PUTs the file at `path` to `peer` (a base URL such as http://127.0.0.1:41234) as blob `hash`. */
export async function putBlob(peer: string, hash: string, path: string, options: PutOptions = {}): Promise<void> {
  if (!isHexHash(hash)) throw new BlobUploadError(peer, hash, "not a sha256 in 64 lowercase hex characters");
  const size = (await stat(path)).size;
  let url: URL;
  try {
    url = new URL(`/blob/${hash}`, peer);
  } catch (error) {
    throw new BlobUploadError(peer, hash, "not a peer URL", { cause: error });
  }
  await new Promise<void>((resolve, reject) => {
    const req = request(url, {
      method: "PUT",
      headers: { "content-length": size, "content-type": "application/octet-stream" },
      timeout: options.timeoutMs ?? 60_000,
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (error) => reject(new BlobUploadError(peer, hash, error.message, { cause: error })));
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < 1_000) body += chunk;
      });
      res.on("end", () => {
        if (res.statusCode === 200 || res.statusCode === 201) resolve();
        else reject(new BlobUploadError(peer, hash, `HTTP ${res.statusCode}: ${body.trim()}`));
      });
    });
    let sent = 0;
    const file = createReadStream(path);
    file.on("data", (chunk) => {
      sent += chunk.length;
      options.onProgress?.(sent, size);
    });
    file.on("error", (error) => {
      req.destroy();
      reject(new BlobUploadError(peer, hash, `cannot read ${path}`, { cause: error }));
    });
    file.pipe(req);
  });
}

/** One blob to upload: its hash and the file holding its bytes. */
export interface BlobFile {
  hash: string;
  path: string;
}

/** Where each blob went: peer URLs by blob hash. */
export type Placement = Map<string, string[]>;

/**
 * Which peers get which blob: the manifest goes to every peer, shard i to `copies` peers starting
 * at peer i mod n, so consecutive shards land on different peers. Pure.
 */
export function placeBlobs(
  peers: readonly string[],
  manifest: BlobFile,
  shards: readonly BlobFile[],
  copies: number,
): Placement {
  if (peers.length === 0) throw new RangeError("no blob-store peer to upload to");
  const n = Math.min(Math.max(1, Math.floor(copies)), peers.length);
  const placement: Placement = new Map([[manifest.hash, [...peers]]]);
  shards.forEach((shard, i) => {
    const targets = Array.from({ length: n }, (_, k) => peers[(i + k) % peers.length]!);
    const already = placement.get(shard.hash) ?? [];
    placement.set(shard.hash, [...new Set([...already, ...targets])]);
  });
  return placement;
}

/**
 * Uploads every placed blob, one PUT at a time, and reports bytes sent over all uploads
 * (`total` counts every copy).
 */
export async function uploadPlaced(
  placement: Placement,
  files: readonly BlobFile[],
  onProgress?: (sent: number, total: number) => void,
): Promise<{ uploads: number; bytes: number }> {
  const pathOf = new Map(files.map((f) => [f.hash, f.path]));
  const jobs: { peer: string; hash: string; path: string; size: number }[] = [];
  for (const [hash, peers] of placement) {
    const path = pathOf.get(hash);
    if (path === undefined) throw new RangeError(`no file for blob ${hash}`);
    const size = (await stat(path)).size;
    for (const peer of peers) jobs.push({ peer, hash, path, size });
  }
  const total = jobs.reduce((sum, j) => sum + j.size, 0);
  let done = 0;
  for (const job of jobs) {
    await putBlob(job.peer, job.hash, job.path, { onProgress: (sent) => onProgress?.(done + sent, total) });
    done += job.size;
  }
  onProgress?.(done, total);
  return { uploads: jobs.length, bytes: total };
}
