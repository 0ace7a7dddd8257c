// The sdk's human-readable NodeStaking and ModelRegistry ABIs must match the compiled contracts, item by item.
import { expect } from "chai";
import hre from "hardhat";
import type { Abi, AbiParameter } from "viem";

import { rewardClaimsAbi } from "../../sdk/claims.ts";
import { paymentEscrowAbi } from "../../sdk/escrow.ts";
import { modelRegistryAbi } from "../../sdk/models.ts";
import { nodeStakingAbi } from "../../sdk/staking.ts";

function canonicalType(parameter: AbiParameter): string {
  if ("components" in parameter && parameter.components !== undefined) {
    const suffix = parameter.type.slice("tuple".length);
    return `(${parameter.components.map(canonicalType).join(",")})${suffix}`;
  }
  return parameter.type;
}

/** `kind name(inputs) -> (outputs)` with canonical types; names of parameters do not matter. */
function signatures(abi: Abi): Set<string> {
  const out = new Set<string>();
  for (const item of abi) {
    if (item.type !== "function" && item.type !== "event" && item.type !== "error") continue;
    const inputs = item.inputs.map(canonicalType).join(",");
    const outputs = item.type === "function" ? ` -> (${item.outputs.map(canonicalType).join(",")})` : "";
    const indexed =
      item.type === "event" ? ` [${item.inputs.map((i) => ("indexed" in i && i.indexed ? 1 : 0)).join("")}]` : "";
    out.add(`${item.type} ${item.name}(${inputs})${outputs}${indexed}`);
  }
  return out;
}

describe("sdk NodeStaking ABI", function () {
  it("is a subset of the compiled NodeStaking and InframeshToken ABIs", async function () {
    const staking = signatures((await hre.artifacts.readArtifact("NodeStaking")).abi as Abi);
    const token = signatures((await hre.artifacts.readArtifact("InframeshToken")).abi as Abi);
    const unknown = [...signatures(nodeStakingAbi)].filter(
      // Token errors surface through NodeStaking's transfers.
      (signature) => !staking.has(signature) && !(signature.startsWith("error ") && token.has(signature)),
    );
    expect(unknown).to.deep.equal([]);
  });
});

describe("sdk ModelRegistry ABI", function () {
  it("is a subset of the compiled ModelRegistry ABI", async function () {
    const registry = signatures((await hre.artifacts.readArtifact("ModelRegistry")).abi as Abi);
    expect([...signatures(modelRegistryAbi)].filter((signature) => !registry.has(signature))).to.deep.equal([]);
  });
});

describe("sdk PaymentEscrow ABI", function () {
  it("is a subset of the compiled PaymentEscrow and InframeshToken ABIs", async function () {
    const escrow = signatures((await hre.artifacts.readArtifact("PaymentEscrow")).abi as Abi);
    const token = signatures((await hre.artifacts.readArtifact("InframeshToken")).abi as Abi);
    const unknown = [...signatures(paymentEscrowAbi)].filter(
      (signature) => !escrow.has(signature) && !(signature.startsWith("error ") && token.has(signature)),
    );
    expect(unknown).to.deep.equal([]);
  });
});

describe("sdk RewardClaims ABI", function () {
  it("is a subset of the compiled RewardClaims ABI", async function () {
    const claims = signatures((await hre.artifacts.readArtifact("RewardClaims")).abi as Abi);
    expect([...signatures(rewardClaimsAbi)].filter((signature) => !claims.has(signature))).to.deep.equal([]);
  });
});
