// A job, from the client's signed work unit to a signed proof of serving in the outbox. The checks
// are pure functions of the request, the clock and what this node serves; `serveJob` adds the
// signature recovery, the model run and the outbox write. A job that fails anywhere writes no
// receipt; a receipt is written, with its job id claimed, before the answer leaves.
import type { TypedDataDomain } from "viem";
import { z } from "zod";

import {
  hashWorkUnit,
  payloadHash,
  recoverWorkUnitSigner,
  signProofOfServing,
  type ProofOfServing,
  type TypedDataSigner,
  type WorkUnit,
} from "../sdk/eip712.ts";
import {
  proofOfServingJson,
  receiptJsonSchema,
  signatureSchema,
  workUnitJson,
  workUnitJsonSchema,
  workUnitOf,
  type ProofOfServingJson,
} from "../sdk/receipt.ts";
import type { ZkProofJson } from "../circuits/prover.ts";
import { QuantisationError } from "../circuits/simplenet/quantised.ts";
import { ModelRuntimeError, type InferResponse } from "./process-runtime.ts";

/** The body of `POST /v1/jobs`. */
export const jobRequestSchema = z.strictObject({
  work_unit: workUnitJsonSchema,
  client_signature: signatureSchema,
});
export type JobRequest = z.output<typeof jobRequestSchema>;

/** A refused or failed job: HTTP status, a stable code, a reason for people. */
export class JobError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "JobError";
    this.status = status;
    this.code = code;
  }
}

/** What the agent knows of a model it serves. */
export interface ServedModelTerms {
  modelId: bigint;
  name: string;
  /** The registry's serving version number. */
  version: bigint;
  /** The serving version's price per call, token base units. */
  price: bigint;
  /** The serving version's zk verifier, when its receipts must carry a proof of inference. */
  zkVerifier?: `0x${string}`;
}

/** Turns a parsed JSON body into a job request, or a 400 naming every wrong field. Pure. */
export function parseJobRequest(body: unknown): JobRequest {
  const parsed = jobRequestSchema.safeParse(body);
  if (!parsed.success) {
    const reason = parsed.error.issues
      .map((issue) => {
        const at = issue.path.length === 0 ? "body" : issue.path.map(String).join(".");
        if (issue.code === "unrecognized_keys") return `${at}: unknown field(s) ${issue.keys.join(", ")}`;
        return `${at}: ${issue.message}`;
      })
      .join("; ");
    throw new JobError(400, "bad_request", reason, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * Every check that needs no signature recovery and no I/O: input present and matching its hash,
 * not expired, a model this node serves at the registry's serving version, a fee that covers the
 * price. Returns the raw input bytes. Pure.
 */
export function checkWorkUnit(
  request: JobRequest,
  nowSeconds: number,
  served: ReadonlyMap<bigint, ServedModelTerms>,
): { input: Buffer; workUnit: WorkUnit; model: ServedModelTerms } {
  const w = request.work_unit;
  if (w.input === undefined) {
    throw new JobError(400, "missing_input", "work_unit.input is required: the raw input bytes, base64");
  }
  const input = Buffer.from(w.input, "base64");
  const inputHash = payloadHash(input);
  if (inputHash !== w.input_hash) {
    throw new JobError(
      400,
      "input_hash_mismatch",
      `work_unit.input_hash is ${w.input_hash} but sha256 of the input bytes is ${inputHash}`,
    );
  }
  if (w.expires_at <= nowSeconds) {
    throw new JobError(400, "expired", `the work unit expired at ${w.expires_at} (now ${nowSeconds})`);
  }
  const model = served.get(BigInt(w.model_ref.model_id));
  if (model === undefined) {
    const list = [...served.values()].map((m) => `${m.modelId} (${m.name})`).join(", ");
    throw new JobError(
      404,
      "model_not_served",
      `this node does not serve model ${w.model_ref.model_id}; it serves ${list}`,
    );
  }
  if (BigInt(w.model_ref.version) !== model.version) {
    throw new JobError(
      409,
      "wrong_version",
      `model ${model.modelId} (${model.name}) serves version ${model.version}, the work unit asks for ${w.model_ref.version}`,
    );
  }
  if (w.max_fee < model.price) {
    throw new JobError(
      402,
      "fee_too_low",
      `max_fee ${w.max_fee} is below the price ${model.price} of model ${model.modelId} version ${model.version}`,
    );
  }
  return { input, workUnit: workUnitOf(request), model };
}

/** Checks a model server's answer and returns the output bytes to hash. Pure. */
export function checkModelAnswer(name: string, answer: InferResponse): Buffer {
  if (answer.status === 400) {
    let reason = "the model refused the input";
    try {
      reason = (JSON.parse(answer.body.toString("utf8")) as { reason?: string }).reason ?? reason;
    } catch {
      // keep the generic reason
    }
    throw new JobError(400, "model_rejected_input", `${name}: ${reason}`);
  }
  if (answer.status !== 200) {
    throw new JobError(
      502,
      "model_failed",
      `${name} answered ${answer.status}: ${answer.body.toString("utf8").slice(0, 300)}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const output = (parsed as { output?: unknown } | undefined)?.output;
  if (!Array.isArray(output) || !output.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new JobError(502, "bad_output", `${name} answered 200 without {"output":[numbers]}`);
  }
  return answer.body;
}

export interface JobDeps {
  domain: TypedDataDomain;
  node: TypedDataSigner;
  served: ReadonlyMap<bigint, ServedModelTerms>;
  timeoutMs: number;
  now: () => number;
  /** Runs the model; throws ModelRuntimeError when it is down, fails or times out. */
  infer: (modelId: bigint, input: Buffer, timeoutMs: number) => Promise<InferResponse>;
  /** Has this job id been served already? */
  seen: (jobId: string) => Promise<boolean>;
  /**
   * Runs the quantised model and proves it (a zk-required version): the output body to serve and
   * the receipt's `zk_proof`. Throws QuantisationError when the input is not one the circuit takes.
   */
  proveZk?: (modelId: bigint, input: Buffer) => Promise<{ outputBody: Uint8Array; zkProof: ZkProofJson }>;
  /** Records the receipt; false when the job id already had one. */
  record: (jobId: string, receiptJson: string) => Promise<boolean>;
}

export interface JobAnswer {
  job_id: string;
  node_id: string;
  output: string;
  output_hash: string;
  proof_of_serving: ProofOfServingJson;
}

/** The quantised model's answer and its proof, for a zk-required version. */
async function proveJob(
  deps: JobDeps,
  model: ServedModelTerms,
  input: Buffer,
): Promise<{ output: Buffer; zkProof: ZkProofJson }> {
  if (deps.proveZk === undefined) {
    throw new JobError(
      503,
      "zk_unavailable",
      `model ${model.modelId} (${model.name}) requires a zk proof and this node has no prover`,
    );
  }
  try {
    const { outputBody, zkProof } = await deps.proveZk(model.modelId, input);
    return { output: Buffer.from(outputBody), zkProof };
  } catch (error) {
    if (error instanceof QuantisationError) {
      throw new JobError(400, "model_rejected_input", `${model.name} (zk): ${error.message}`, { cause: error });
    }
    throw new JobError(502, "proof_failed", `proving failed: ${(error as Error).message}`, { cause: error });
  }
}

/** Serves one job end to end. Throws JobError for every refusal or failure (no receipt then). */
export async function serveJob(deps: JobDeps, body: unknown): Promise<{ answer: JobAnswer; model: ServedModelTerms }> {
  const request = parseJobRequest(body);
  const { input, workUnit, model } = checkWorkUnit(request, Math.floor(deps.now() / 1000), deps.served);
  const signer = await recoverWorkUnitSigner(deps.domain, workUnit, request.client_signature).catch(() => null);
  if (signer === null || signer.toLowerCase() !== workUnit.client.toLowerCase()) {
    throw new JobError(
      401,
      "bad_signature",
      `client_signature was not made by requested_by ${workUnit.client} over this work unit (chain ${String(deps.domain.chainId)}, contract ${String(deps.domain.verifyingContract)})`,
    );
  }
  if (await deps.seen(workUnit.jobId)) {
    throw new JobError(409, "duplicate_job", `job ${workUnit.jobId} was already served by this node`);
  }

  const started = deps.now();
  let output: Buffer;
  let zkProof: ZkProofJson | undefined;
  if (model.zkVerifier !== undefined) {
    ({ output, zkProof } = await proveJob(deps, model, input));
  } else {
    let answer: InferResponse;
    try {
      answer = await deps.infer(model.modelId, input, deps.timeoutMs);
    } catch (error) {
      if (error instanceof ModelRuntimeError && error.code === "TIMEOUT") {
        throw new JobError(504, "model_timeout", error.message, { cause: error });
      }
      if (error instanceof ModelRuntimeError && error.code === "NOT_RUNNING") {
        // Loading or restarting: a gateway should try another node, or this one a moment later.
        throw new JobError(503, "model_unavailable", error.message, { cause: error });
      }
      throw new JobError(502, "model_failed", (error as Error).message, { cause: error });
    }
    output = checkModelAnswer(model.name, answer);
  }
  const latencyMs = Math.max(0, Math.round(deps.now() - started));

  const proof: ProofOfServing = {
    jobId: workUnit.jobId,
    workUnitHash: hashWorkUnit(deps.domain, workUnit),
    outputHash: payloadHash(output),
    latencyMs,
    node: deps.node.address,
  };
  const signature = await signProofOfServing(deps.node, deps.domain, proof);
  const proofJson = proofOfServingJson(proof, request.work_unit.model_ref, signature);
  // A zk receipt carries the input and output bytes: the oracle recomputes the proof's public
  // inputs from them, and checks them against the signed hashes.
  const receipt = {
    work_unit: workUnitJson(workUnit, zkProof === undefined ? undefined : input),
    client_signature: request.client_signature,
    proof_of_serving: proofJson,
    ...(zkProof === undefined ? {} : { zk_proof: zkProof, output: output.toString("base64") }),
  };
  receiptJsonSchema.parse(receipt); // our own output must be what the oracle accepts
  if (!(await deps.record(workUnit.jobId, JSON.stringify(receipt)))) {
    throw new JobError(409, "duplicate_job", `job ${workUnit.jobId} was already served by this node`);
  }
  return {
    answer: {
      job_id: workUnit.jobId,
      node_id: deps.node.address,
      output: output.toString("base64"),
      output_hash: proof.outputHash,
      proof_of_serving: proofJson,
    },
    model,
  };
}
