// Node heartbeats: a node agent tells the gateways it is up, where, with which models loaded, how
// busy and on what machine. The message is canonical JSON (keys sorted, no spaces) signed with
// the node's operator key (EIP-191 personal message), so no one but the node can speak for it;
// the chain id inside stops a heartbeat for one deployment being replayed to another, the
// timestamp stops an old one being replayed at all.
import { type Address, type Hex, recoverMessageAddress } from "viem";
import { z } from "zod";

import { addressSchema, signatureSchema } from "../sdk/receipt.ts";
import { GatewayError } from "./errors.ts";
import type { Hardware } from "./scoring.ts";
import { canonicalJson } from "../sdk/canonical-json.ts";

export { canonicalJson };

const MAX_MODELS = 256;
const MAX_GPUS = 64;

export const hardwareSchema = z.strictObject({
  cpus: z.number().int().min(1).max(65_536),
  memory_bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  gpus: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(128),
        memory_bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      }),
    )
    .max(MAX_GPUS),
});

/** What a node signs. */
export const heartbeatSchema = z.strictObject({
  chain_id: z.number().int().positive(),
  node: addressSchema,
  endpoint: z
    .string()
    .max(512)
    .regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, "expected the node's http(s) base URL"),
  /** Model ids loaded and ready. */
  models: z.array(z.number().int().positive().max(Number.MAX_SAFE_INTEGER)).max(MAX_MODELS),
  /** Fraction of capacity in use, 0..1. */
  load: z.number().min(0).max(1),
  hardware: hardwareSchema,
  /** Unix ms when the node sent it. */
  timestamp: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});
export type Heartbeat = z.output<typeof heartbeatSchema>;

/** The body of `POST /v1/heartbeats`. */
export const signedHeartbeatSchema = z.strictObject({ heartbeat: heartbeatSchema, signature: signatureSchema });
export type SignedHeartbeat = z.output<typeof signedHeartbeatSchema>;

/** The exact message a node signs for `heartbeat`. Pure. */
export function heartbeatMessage(heartbeat: z.input<typeof heartbeatSchema>): string {
  return canonicalJson(heartbeat);
}

/** Signs a heartbeat with the node's key. */
export async function signHeartbeat(
  signer: { address: Address; signMessage: (args: { message: string }) => Promise<Hex> },
  heartbeat: z.input<typeof heartbeatSchema>,
): Promise<{ heartbeat: z.input<typeof heartbeatSchema>; signature: Hex }> {
  return { heartbeat, signature: await signer.signMessage({ message: heartbeatMessage(heartbeat) }) };
}

export interface HeartbeatRules {
  chainId: number;
  nowMs: number;
  /** Oldest accepted heartbeat. */
  maxAgeMs: number;
  /** Most a node's clock may run ahead. */
  maxFutureMs: number;
}

/** Checks a parsed heartbeat's chain and clock; throws a 400 naming what is wrong. Pure. */
export function checkHeartbeatTiming(heartbeat: Heartbeat, rules: HeartbeatRules): void {
  if (heartbeat.chain_id !== rules.chainId) {
    throw new GatewayError(
      400,
      "wrong_chain",
      `the heartbeat is for chain ${heartbeat.chain_id}, this gateway serves chain ${rules.chainId}`,
    );
  }
  if (heartbeat.timestamp < rules.nowMs - rules.maxAgeMs) {
    throw new GatewayError(
      400,
      "stale_heartbeat",
      `the heartbeat is ${rules.nowMs - heartbeat.timestamp} ms old (at most ${rules.maxAgeMs}); check the node's clock`,
    );
  }
  if (heartbeat.timestamp > rules.nowMs + rules.maxFutureMs) {
    throw new GatewayError(
      400,
      "future_heartbeat",
      `the heartbeat is ${heartbeat.timestamp - rules.nowMs} ms in the future (at most ${rules.maxFutureMs}); check the node's clock`,
    );
  }
}

/**
 * A heartbeat exactly as the node sent it (its fields before any normalisation: those are the
 * signed bytes) with the node's signature: what anyone needs to check the node said it.
 */
export interface SignedHeartbeatRecord {
  heartbeat: z.input<typeof heartbeatSchema>;
  signature: Hex;
}

/** The address that signed `signed.heartbeat`, or null when the signature does not recover. */
export async function heartbeatSigner(signed: { heartbeat: unknown; signature: Hex }): Promise<Address | null> {
  return recoverMessageAddress({ message: canonicalJson(signed.heartbeat), signature: signed.signature }).catch(
    () => null,
  );
}

/** A heartbeat that passed verifyHeartbeat: parsed, and as signed. */
export interface VerifiedHeartbeat {
  heartbeat: Heartbeat;
  signed: SignedHeartbeatRecord;
}

/** Parses, checks and authenticates a heartbeat body; throws 400/401 with the reason. */
export async function verifySignedHeartbeat(body: unknown, rules: HeartbeatRules): Promise<VerifiedHeartbeat> {
  const parsed = signedHeartbeatSchema.safeParse(body);
  if (!parsed.success) {
    throw new GatewayError(400, "bad_request", describeIssues(parsed.error), { cause: parsed.error });
  }
  const { heartbeat, signature } = parsed.data;
  checkHeartbeatTiming(heartbeat, rules);
  // The signed bytes are the canonical JSON of what the node sent, before any normalisation.
  const sent = (body as { heartbeat: z.input<typeof heartbeatSchema> }).heartbeat;
  const signer = await heartbeatSigner({ heartbeat: sent, signature });
  if (signer === null || signer.toLowerCase() !== heartbeat.node.toLowerCase()) {
    throw new GatewayError(
      401,
      "bad_signature",
      `the heartbeat's signature is not node ${heartbeat.node}'s over its canonical JSON`,
    );
  }
  return { heartbeat, signed: { heartbeat: sent, signature } };
}

/** verifySignedHeartbeat, the parsed heartbeat only. */
export async function verifyHeartbeat(body: unknown, rules: HeartbeatRules): Promise<Heartbeat> {
  return (await verifySignedHeartbeat(body, rules)).heartbeat;
}

/** Every zod issue as "path: message", joined. Pure. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const at = issue.path.length === 0 ? "body" : issue.path.map(String).join(".");
      if (issue.code === "unrecognized_keys") return `${at}: unknown field(s) ${issue.keys.join(", ")}`;
      return `${at}: ${issue.message}`;
    })
    .join("; ");
}

export type { Hardware };
