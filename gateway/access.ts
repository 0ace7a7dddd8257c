// Who may call a model version: ModelRegistry stores the policy (public, allowlist, or holders of
// an ERC-20/ERC-721 at or above a threshold), the gateway enforces it before routing. The decision
// is pure; the facts (allowlist bit, token balance) come from the chain module.
import type { Address } from "viem";

import type { AccessKindName } from "../sdk/models.ts";
import { GatewayError } from "./errors.ts";

export interface AccessPolicy {
  kind: AccessKindName;
  token: Address;
  threshold: bigint;
}

/** The chain facts a policy needs about one account (only the one its kind reads is asked for). */
export interface AccessFacts {
  allowlisted?: boolean;
  balance?: bigint;
}

/** Which fact `policy` needs: none, the allowlist bit, or a token balance. Pure. */
export function factNeeded(policy: AccessPolicy): "none" | "allowlist" | "balance" {
  if (policy.kind === "public") return "none";
  if (policy.kind === "allowlist") return "allowlist";
  return "balance";
}

/** Throws a 403 naming the policy when `account` may not call the model. Pure. */
export function checkAccess(policy: AccessPolicy, account: Address, facts: AccessFacts, model: string): void {
  switch (policy.kind) {
    case "public":
      return;
    case "allowlist":
      if (facts.allowlisted === true) return;
      throw new GatewayError(
        403,
        "access_denied",
        `model ${model} is allowlist-only and ${account} is not on its allowlist (ask the publisher)`,
      );
    case "erc20-holders":
    case "erc721-holders": {
      const balance = facts.balance ?? 0n;
      if (balance >= policy.threshold) return;
      const what = policy.kind === "erc20-holders" ? "ERC-20" : "ERC-721";
      throw new GatewayError(
        403,
        "access_denied",
        `model ${model} is open to holders of at least ${policy.threshold} of ${what} ${policy.token}; ${account} holds ${balance}`,
      );
    }
  }
}
