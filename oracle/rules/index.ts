// Every verification rule in the order the worker applies them: cheap checks first, signatures
// next, chain facts last. `verifyReceipt` is pure over its inputs except for the pluggable zk
// verifiers; the job-id-never-seen rule is the database's UNIQUE key, and the escrow rule runs in
// the database transaction that records the verdict (see oracle/store/store.ts).
import type { Address, TypedDataDomain } from "viem";

import type { Receipt } from "../../sdk/receipt.ts";
import { type ModelFacts, type NodeFacts, checkModel, checkNode } from "./chain-facts.ts";
import type { Rejection } from "./reasons.ts";
import {
  checkConsistency,
  checkExpiry,
  checkInputHash,
  checkSigners,
  receiptDigests,
  recoverSigners,
} from "./receipt.ts";
import { type ZkVerifierRegistry, checkZkProof } from "./zk.ts";

export * from "./chain-facts.ts";
export * from "./reasons.ts";
export * from "./receipt.ts";
export * from "./zk.ts";

/** What the rules need besides the receipt. */
export interface VerifyContext {
  domain: TypedDataDomain;
  receivedAt: number;
  expiryGraceSeconds: number;
  minTier: number;
  /** Reads chain facts (cached per block by oracle/chain.ts). */
  facts(receipt: Receipt): Promise<{ node: NodeFacts; model: ModelFacts }>;
  zk: ZkVerifierRegistry;
}

export type Verdict = { ok: true; fee: bigint; publisher: Address } | { ok: false; rejection: Rejection };

const no = (rejection: Rejection): Verdict => ({ ok: false, rejection });

/** Applies every rule that does not need the database to `receipt`. */
export async function verifyReceipt(receipt: Receipt, ctx: VerifyContext): Promise<Verdict> {
  const input = checkInputHash(receipt);
  if (input) return no(input);
  const digests = receiptDigests(ctx.domain, receipt);
  const consistent = checkConsistency(receipt, digests);
  if (consistent) return no(consistent);
  const expired = checkExpiry(receipt, ctx.receivedAt, ctx.expiryGraceSeconds);
  if (expired) return no(expired);
  const signed = checkSigners(receipt, await recoverSigners(receipt, digests));
  if (signed) return no(signed);
  const facts = await ctx.facts(receipt);
  const node = checkNode(receipt, facts.node, ctx.minTier);
  if (node) return no(node);
  const model = checkModel(receipt, facts.model);
  if (!("ok" in model)) return no(model);
  const zk = await checkZkProof(receipt, model.zk, ctx.zk);
  if (zk) return no(zk);
  return { ok: true, fee: model.fee, publisher: model.publisher };
}
