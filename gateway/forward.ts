// Forwarding one job to one node: POST <endpoint>/v1/jobs over a keep-alive connection with a
// deadline, then sort the node's answer into served / the client's fault / the node's fault.
// Only the node's fault (down, slow, 5xx, a model it does not have, a malformed answer) is worth
// failing over for; a 4xx the client caused goes straight back to the client.
import { createHash } from "node:crypto";
import http from "node:http";

import type { Address, Hex } from "viem";
import { z } from "zod";

import { proofOfServingJsonSchema, type ProofOfServingJson } from "../sdk/receipt.ts";

const agent = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });

/** Largest node answer read: an output of the receipt schema's size, base64, plus the proof. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export interface RawAnswer {
  status: number;
  body: Buffer;
}

/**
 * POSTs `body` to `url`; rejects on connection errors and when `timeoutMs` passes first. A kept-alive
 * connection the node closed while idle fails with ECONNRESET before anything was sent: that one
 * is retried once on a fresh connection instead of counting against the node.
 */
export async function postJson(url: string, body: string, timeoutMs: number): Promise<RawAnswer> {
  try {
    return await postOnce(url, body, timeoutMs);
  } catch (error) {
    if ((error as { staleSocket?: boolean }).staleSocket !== true) throw error;
    return postOnce(url, body, timeoutMs);
  }
}

/** Parsed request targets by URL: a node's endpoint is parsed once, not on every call. */
const targets = new Map<string, { protocol: string; hostname: string; port: string; path: string }>();

function targetOf(url: string) {
  let target = targets.get(url);
  if (target === undefined) {
    const u = new URL(url);
    if (u.protocol !== "http:") throw new Error(`only http:// node endpoints are supported, not ${u.protocol}`);
    // IPv6 literals come bracketed from URL; http.request wants them bare.
    target = {
      protocol: u.protocol,
      hostname: u.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: u.port,
      path: `${u.pathname}${u.search}`,
    };
    if (targets.size > 10_000) targets.clear();
    targets.set(url, target);
  }
  return target;
}

function postOnce(url: string, body: string, timeoutMs: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = http.request(
      {
        ...targetOf(url),
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (response) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            request.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on("error", reject);
      },
    );
    const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on("close", () => clearTimeout(deadline));
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", (error: Error & { code?: string }) => {
      const stale = !answered && request.reusedSocket && error.code === "ECONNRESET";
      reject(stale ? Object.assign(error, { staleSocket: true }) : error);
    });
    request.end(body);
  });
}

const servedSchema = z.object({
  job_id: z.string(),
  node_id: z.string(),
  output: z.base64(),
  output_hash: z.string(),
  proof_of_serving: proofOfServingJsonSchema,
});

/** A node's served answer, checked. */
export interface Served {
  node: Address;
  output: string;
  outputHash: Hex;
  proof: ProofOfServingJson;
}

/** Node error codes that say "not this node" rather than "not this request": fail over. */
const NODE_SIDE_CODES = new Set(["model_not_served", "wrong_version", "duplicate_job", "not_found"]);

export type Outcome =
  | { kind: "served"; served: Served }
  | { kind: "client_error"; status: number; code: string; reason: string }
  | { kind: "node_fault"; reason: string };

/**
 * Sorts a node's HTTP answer (pure): a 200 must carry output whose sha256 is `output_hash`, a proof
 * of serving for this job by this node; a 4xx other than the node-side codes is the client's.
 */
export function classifyAnswer(answer: RawAnswer, node: Address, jobId: Hex): Outcome {
  let json: unknown;
  try {
    json = JSON.parse(answer.body.toString("utf8"));
  } catch {
    return { kind: "node_fault", reason: `answered ${answer.status} with a body that is not JSON` };
  }
  if (answer.status === 200) {
    const parsed = servedSchema.safeParse(json);
    if (!parsed.success) return { kind: "node_fault", reason: "answered 200 without output and proof of serving" };
    const a = parsed.data;
    const outputHash = `0x${createHash("sha256").update(Buffer.from(a.output, "base64")).digest("hex")}` as Hex;
    if (outputHash !== a.output_hash.toLowerCase() || outputHash !== a.proof_of_serving.output_hash) {
      return { kind: "node_fault", reason: "the output's sha256 is not the output hash it signed" };
    }
    if (a.proof_of_serving.node_id.toLowerCase() !== node.toLowerCase()) {
      return { kind: "node_fault", reason: `the proof names node ${a.proof_of_serving.node_id}, not ${node}` };
    }
    if (a.proof_of_serving.job_id !== jobId.toLowerCase()) {
      return { kind: "node_fault", reason: `the proof is for job ${a.proof_of_serving.job_id}, not ${jobId}` };
    }
    return { kind: "served", served: { node, output: a.output, outputHash, proof: a.proof_of_serving } };
  }
  const error = json as { error?: unknown; reason?: unknown } | null;
  const code = typeof error?.error === "string" ? error.error : "unknown";
  const reason = typeof error?.reason === "string" ? error.reason : `status ${answer.status}`;
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 429 && !NODE_SIDE_CODES.has(code)) {
    return { kind: "client_error", status: answer.status, code, reason };
  }
  return { kind: "node_fault", reason: `answered ${answer.status} ${code}: ${reason}` };
}
