// `infra infer <model> --input …`: one inference call through a gateway, as a client makes it.
// With the client's own key it signs the EIP-712 work unit (paid from its payment-escrow deposit,
// checked first); with --api-key the gateway signs for the key's account. Either way the answer is
// verified before anything is printed: the output hashes to the output hash the node signed, the
// proof of serving is signed by the node that answered (a registered one) and is for this job.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";

import { formatUnits, getAddress, type Address, type Hex, type TypedDataDomain } from "viem";

import {
  hashWorkUnit,
  inframeshDomain,
  payloadHash,
  recoverProofOfServingSigner,
  signWorkUnit,
  type TypedDataSigner,
  type WorkUnit,
} from "../../sdk/eip712.ts";
import { readEscrowAccount } from "../../sdk/escrow.ts";
import {
  proofOfServingJsonSchema,
  proofOfServingOf,
  workUnitJson,
  type ProofOfServingJson,
} from "../../sdk/receipt.ts";
import { readNodeStatus, type StakingWallet } from "../../sdk/staking.ts";
import type { NetworkContext } from "./context.ts";
import { escrowContracts } from "./escrow.ts";
import { CliError, describeModelRef, type ModelRef } from "./format.ts";
import { resolveModel } from "./model.ts";
import { readTokenInfo, stakingContracts, type TokenInfo } from "./stake.ts";

/** Where the CLI looks for a gateway without --gateway: INFRAMESH_GATEWAY_URL, else the documented default. */
export function defaultGatewayUrl(env: NodeJS.ProcessEnv): string {
  const url = env.INFRAMESH_GATEWAY_URL;
  return url !== undefined && url !== "" ? url : "http://127.0.0.1:8080";
}

/** How long a signed work unit stays valid: long enough for failover, short enough to be useless if leaked. */
const WORK_UNIT_TTL_S = 600;
const CALL_TIMEOUT_MS = 120_000;

// ------------------------------------------------------------------ pure parts

/**
 * The input bytes of a call from `--input`'s JSON: an array becomes `{"input": [...]}` (the form
 * of simplenet and every model with an `input` array), an object is sent as written.
 */
export function inputBytes(text: string, source: string): Uint8Array {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(
      `${source} is not JSON: give a JSON array such as [0.5, 1, …] or an object such as {"input": [...]}`,
      { cause: error },
    );
  }
  if (Array.isArray(value)) return Buffer.from(JSON.stringify({ input: value }), "utf8");
  if (typeof value === "object" && value !== null) return Buffer.from(JSON.stringify(value), "utf8");
  throw new CliError(`${source} must be a JSON array or object, got ${JSON.stringify(value)}`);
}

/** A fee cap in base units of the payment token. */
export function parseMaxFee(text: string): bigint {
  if (!/^[0-9]+$/.test(text)) throw new CliError(`--max-fee must be a whole number of base units, got "${text}"`);
  return BigInt(text);
}

/** The gateway's 200 answer, as far as the CLI relies on it. */
export interface GatewayAnswer {
  output: string;
  job_id: string;
  node_id: string;
  output_hash: string;
  proof_of_serving: unknown;
  attempts?: number;
}

/** What the CLI checked in an answer; any failure means the output must not be trusted. */
export interface VerifiedAnswer {
  output: Buffer;
  outputHash: Hex;
  node: Address;
  proof: ProofOfServingJson;
}

/**
 * Checks an answer: output bytes hash to the output hash in the proof, the proof is for `jobId`
 * (and, when the client signed it, for that exact work unit) and is signed by the node named.
 */
export async function verifyAnswer(
  domain: TypedDataDomain,
  answer: GatewayAnswer,
  expect: { jobId?: Hex; workUnitHash?: Hex },
): Promise<VerifiedAnswer> {
  const fail = (why: string): never => {
    throw new CliError(`the gateway's answer does not verify: ${why}; the output is not trusted and not printed`);
  };
  if (typeof answer.output !== "string") fail("it has no output");
  const parsed = proofOfServingJsonSchema.safeParse(answer.proof_of_serving);
  if (!parsed.success) return fail("its proof of serving is malformed");
  const proof = parsed.data;
  const output = Buffer.from(answer.output, "base64");
  const outputHash = payloadHash(output);
  if (outputHash !== proof.output_hash)
    fail(`the output hashes to ${outputHash}, the node signed ${proof.output_hash}`);
  if (String(answer.output_hash).toLowerCase() !== outputHash) fail("output_hash is not the output's sha256");
  if (expect.jobId !== undefined && proof.job_id !== expect.jobId.toLowerCase()) {
    fail(`the proof is for job ${proof.job_id}, not ${expect.jobId}`);
  }
  if (expect.workUnitHash !== undefined && proof.work_unit_hash !== expect.workUnitHash.toLowerCase()) {
    fail("the proof is for another work unit than the one signed");
  }
  if (getAddress(String(answer.node_id)) !== proof.node_id) fail(`the proof names node ${proof.node_id}`);
  const signer = await recoverProofOfServingSigner(
    domain,
    proofOfServingOf({ proof_of_serving: proof }),
    proof.signature,
  ).catch(() => undefined);
  if (signer === undefined || getAddress(signer) !== proof.node_id) {
    fail(`the proof of serving is not signed by node ${proof.node_id}`);
  }
  return { output, outputHash, node: proof.node_id, proof: answer.proof_of_serving as ProofOfServingJson };
}

/** The output as the model wrote it: JSON when it parses, else UTF-8 text. */
export function decodeOutput(output: Buffer): unknown {
  const text = output.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// ------------------------------------------------------------------ the call

export interface InferOptions {
  model: ModelRef;
  /** `--input` as given: JSON, or @file. */
  input: string;
  gateway: string;
  maxFee?: bigint;
  apiKey?: string;
  /** The client's wallet; only needed without an API key. */
  wallet?: () => Promise<StakingWallet>;
}

export interface InferResult {
  model: string;
  modelId: bigint;
  version: bigint;
  jobId: string;
  node: Address;
  client: Address | "api key";
  maxFee: bigint;
  output: unknown;
  outputHash: Hex;
  proofOfServing: ProofOfServingJson;
  verified: true;
  attempts: number | null;
}

async function readInput(input: string): Promise<Uint8Array> {
  if (!input.startsWith("@")) return inputBytes(input, "--input");
  const file = input.slice(1);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read the input file ${file}`, { cause: error });
  }
  return inputBytes(text, file);
}

function formatAmount(units: bigint, token: TokenInfo): string {
  return `${formatUnits(units, token.decimals)} ${token.symbol}`;
}

/** Refuses a call the escrow could not pay for, saying how much to deposit. */
async function checkEscrow(context: NetworkContext, client: Address, maxFee: bigint, name: string): Promise<void> {
  const [account, token] = await Promise.all([
    readEscrowAccount(escrowContracts(context), client),
    readTokenInfo(stakingContracts(context)),
  ]);
  if (account.balance >= maxFee) return;
  const short = maxFee - account.balance;
  const need = `a call to ${name} may cost up to ${formatAmount(maxFee, token)} (${maxFee} base units)`;
  throw new CliError(
    account.balance === 0n
      ? `no deposit: ${client} has nothing in the payment escrow and ${need}; deposit first: ` +
          `infra deposit --amount ${formatUnits(short, token.decimals)}`
      : `insufficient escrow balance: ${client} has ${formatAmount(account.balance, token)} in the payment escrow ` +
          `and ${need}; deposit at least ${formatAmount(short, token)} more: infra deposit --amount ${formatUnits(short, token.decimals)}`,
  );
}

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (error) {
    const gateway = new URL(url).origin;
    throw new CliError(
      `cannot reach the gateway at ${gateway}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message} ` +
        "(is it running? pass --gateway <url> or set INFRAMESH_GATEWAY_URL)",
      { cause: error },
    );
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${url} answered ${res.status} with a body that is not JSON: is it an Inframesh gateway?`);
  }
  return { status: res.status, json };
}

/** A gateway refusal as what it means for the client. */
function refusal(status: number, json: unknown, name: string): CliError {
  const body = (typeof json === "object" && json !== null ? json : {}) as { error?: unknown; reason?: unknown };
  const code = typeof body.error === "string" ? body.error : "unknown";
  const reason = typeof body.reason === "string" ? body.reason : JSON.stringify(json);
  switch (code) {
    case "unknown_model":
      return new CliError(`unknown model "${name}" at this gateway: ${reason}`);
    case "model_rejected_input":
      return new CliError(
        `the model rejected the input: ${reason} (see the input_schema in ${name}'s model.yaml; ` +
          `a JSON array is sent as {"input": [...]})`,
      );
    case "bad_api_key":
      return new CliError(`the gateway refused the API key: ${reason}`);
    default:
      return new CliError(`the gateway refused the call (${status} ${code}): ${reason}`);
  }
}

export async function inferAction(
  context: NetworkContext,
  options: InferOptions,
  progress: { wait(text: string): () => void },
): Promise<InferResult> {
  const input = await readInput(options.input);
  const status = await resolveModel(context.contracts, options.model).catch((error: unknown) => {
    if (error instanceof CliError && error.message.startsWith("unknown ")) {
      throw new CliError(
        `unknown ${describeModelRef(options.model)}: no such model is registered on this network (check the name, and --network)`,
        { cause: error },
      );
    }
    throw error;
  });
  if (status.serving === undefined) {
    throw new CliError(
      `${describeModelRef(options.model)} serves no version yet (its publisher runs infra model mature)`,
    );
  }
  const price = status.serving.record.price;
  const maxFee = options.maxFee ?? price;
  if (maxFee < price) {
    throw new CliError(`--max-fee ${maxFee} is below ${status.name}'s price of ${price} base units per call`);
  }
  const domain = inframeshDomain(context.record.chainId, context.record.contracts.epochSettlement.address);
  const url = `${options.gateway.replace(/\/+$/, "")}/inference/v1/model/${encodeURIComponent(status.name)}`;

  let body: unknown;
  let headers: Record<string, string> = {};
  let expected: { jobId?: Hex; workUnitHash?: Hex } = {};
  let client: Address | "api key" = "api key";
  if (options.apiKey !== undefined) {
    body = { input: Buffer.from(input).toString("base64") };
    headers = { authorization: `Bearer ${options.apiKey}` };
  } else {
    if (options.wallet === undefined) throw new CliError("no signing key and no --api-key");
    const wallet = await options.wallet();
    client = wallet.account.address;
    await checkEscrow(context, client, maxFee, status.name);
    const workUnit: WorkUnit = {
      jobId: `0x${randomBytes(32).toString("hex")}`,
      modelId: status.modelId,
      modelVersion: status.serving.version,
      inputHash: payloadHash(input),
      maxFee,
      client,
      expiresAt: BigInt(Math.floor(Date.now() / 1000) + WORK_UNIT_TTL_S),
    };
    const signature = await signWorkUnit(wallet.account as TypedDataSigner, domain, workUnit);
    body = { work_unit: workUnitJson(workUnit, input), client_signature: signature };
    expected = { jobId: workUnit.jobId, workUnitHash: hashWorkUnit(domain, workUnit) };
  }

  const done = progress.wait(`calling ${status.name} at ${new URL(url).origin}`);
  let answer;
  try {
    answer = await post(url, body, headers);
  } finally {
    done();
  }
  if (answer.status !== 200) throw refusal(answer.status, answer.json, status.name);
  const served = answer.json as GatewayAnswer;
  const verified = await verifyAnswer(domain, served, expected);
  const node = await readNodeStatus(stakingContracts(context), verified.node);
  if (!node.registered) {
    throw new CliError(
      `the gateway's answer does not verify: node ${verified.node} is not registered on this network; ` +
        "the output is not trusted and not printed",
    );
  }
  return {
    model: status.name,
    modelId: status.modelId,
    version: status.serving.version,
    jobId: served.job_id,
    node: verified.node,
    client,
    maxFee,
    output: decodeOutput(verified.output),
    outputHash: verified.outputHash,
    proofOfServing: verified.proof,
    verified: true,
    attempts: typeof served.attempts === "number" ? served.attempts : null,
  };
}

/** `infra infer` for people. */
export function formatInfer(result: InferResult): string {
  const output = typeof result.output === "string" ? result.output : JSON.stringify(result.output);
  return [
    `output  ${output}`,
    `job     ${result.jobId}`,
    `node    ${result.node}`,
    `proof   signed by the node and verified: output sha256 ${result.outputHash}`,
    `fee     at most ${result.maxFee} base units, debited from ${result.client === "api key" ? "the API key's account" : result.client} when the epoch settles`,
  ].join("\n");
}
