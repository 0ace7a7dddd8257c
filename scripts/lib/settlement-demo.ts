// The demo's settlement step (flows 3-4): a client deposits into the escrow and signs work units
// for the published model, nodes sign proofs of serving, and the deployer, acting as the
// one-member oracle committee, checks every signature, splits each fee by the on-chain fee
// schedule, redistributes the slashed stake that staking released to RewardClaims, builds the
// cumulative earnings tree, signs and posts the settlement, waits out the challenge window on the
// local node, finalises, collects the debits, and every account claims.
import { createHash } from "node:crypto";

import {
  type Abi,
  type Address,
  type Hex,
  type PublicClient,
  type TypedDataDomain,
  formatUnits,
  keccak256,
  parseEventLogs,
  toHex,
} from "viem";

import type { DeploymentRecord } from "../../sdk/deployment.ts";
import { buildEarningsTree, packDebits, type EarningsEntry } from "../../sdk/earnings.ts";
import {
  hashWorkUnit,
  inframeshDomain,
  payloadHash,
  recoverProofOfServingSigner,
  recoverWorkUnitSigner,
  signProofOfServing,
  signSettlement,
  signWorkUnit,
  type ProofOfServing,
  type Settlement,
  type TypedDataSigner,
  type WorkUnit,
} from "../../sdk/eip712.ts";
import { readFeeSchedule, splitFee } from "../../sdk/fees.ts";
import {
  proofOfServingJson,
  proofOfServingOf,
  receiptJsonSchema,
  workUnitJson,
  workUnitOf,
  type ReceiptJson,
} from "../../sdk/receipt.ts";
import { nodeStakingAbi, type StakingWallet } from "../../sdk/staking.ts";
import { formatSection, formatTable } from "./table.ts";

/** Tokens the client deposits: far more than the jobs cost, as a client's prepaid balance. */
const DEPOSIT = 100n * 10n ** 18n;
/** Jobs the client asks for, served in turn by the serving nodes. */
const JOBS = 6;

/** The settlement demo could not complete. */
export class SettlementDemoError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "SettlementDemoError";
  }
}

export interface SettlementActors {
  /** The deployer: the one-member committee (default `oracles`) and the token holder. */
  oracle: StakingWallet;
  client: StakingWallet;
  /** Nodes eligible to serve (the jailed one is left out), with their labels. */
  nodes: { label: string; wallet: StakingWallet }[];
  /** The model served: registry id, version and its price and publisher as read from chain. */
  model: { modelId: bigint; version: bigint; price: bigint; publisher: Address };
}

/** One verified receipt, the oracle's view. */
interface VerifiedReceipt {
  client: Address;
  node: Address;
  fee: bigint;
  json: ReceiptJson;
}

function say(text: string): void {
  console.log(`\n> ${text}`);
}

/** Token amounts at full precision: the fees here are a few base units, the slash thousands of tokens. */
function amount(value: bigint): string {
  return formatUnits(value, 18);
}

/** A JSON-RPC account of the local node as the sdk's typed-data signer (eth_signTypedData_v4). */
function signerOf(wallet: StakingWallet): TypedDataSigner {
  return {
    address: wallet.account.address,
    signTypedData: (args) => wallet.signTypedData({ ...args, account: wallet.account } as never),
  } as TypedDataSigner;
}

/** Splits `total` by `weights`, the rounding remainder to the first; every unit is credited. Pure. */
export function splitByWeight(total: bigint, weights: readonly bigint[]): bigint[] {
  const sum = weights.reduce((a, b) => a + b, 0n);
  if (sum === 0n) {
    if (total === 0n) return weights.map(() => 0n);
    throw new SettlementDemoError(`cannot split ${total} over no weight: no node of the epoch to credit`);
  }
  const parts = weights.map((w) => (total * w) / sum);
  parts[0] = parts[0]! + total - parts.reduce((a, b) => a + b, 0n);
  return parts;
}

export async function runSettlementScenario(
  publicClient: PublicClient,
  record: DeploymentRecord,
  actors: SettlementActors,
  label: (address: string) => string,
): Promise<void> {
  const c = record.contracts;
  const send = async (wallet: StakingWallet, address: Address, abi: Abi, functionName: string, args: unknown[]) => {
    const hash = await wallet.writeContract({
      address,
      abi,
      functionName,
      args,
      chain: wallet.chain,
      account: wallet.account,
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new SettlementDemoError(`${functionName} reverted (tx ${hash})`);
    return receipt;
  };
  const read = <T>(address: Address, abi: Abi, functionName: string, args: unknown[] = []) =>
    publicClient.readContract({ address, abi, functionName, args }) as Promise<T>;
  const { oracle, client, nodes, model } = actors;
  const domain: TypedDataDomain = inframeshDomain(record.chainId, c.epochSettlement.address);

  say("A client deposits into the PaymentEscrow");
  await send(oracle, c.stakeToken.address, c.stakeToken.abi, "transfer", [client.account.address, DEPOSIT]);
  await send(client, c.stakeToken.address, c.stakeToken.abi, "approve", [c.paymentEscrow.address, DEPOSIT]);
  const deposited = await send(client, c.paymentEscrow.address, c.paymentEscrow.abi, "deposit", [DEPOSIT]);
  console.log(`  ${label(client.account.address)} deposits ${amount(DEPOSIT)} INFRA (gas ${deposited.gasUsed})`);

  say(`The client signs ${JOBS} work units for model ${model.modelId} v${model.version}; nodes serve and sign proofs`);
  const now = (await publicClient.getBlock()).timestamp;
  const receipts: ReceiptJson[] = [];
  for (let j = 0; j < JOBS; j++) {
    const node = nodes[j % nodes.length]!;
    const input = new TextEncoder().encode(JSON.stringify({ x: [j, j + 1, j + 2] }));
    const workUnit: WorkUnit = {
      jobId: keccak256(toHex(`demo-job-${j}`)),
      modelId: model.modelId,
      modelVersion: model.version,
      inputHash: payloadHash(input),
      maxFee: model.price * 2n,
      client: client.account.address,
      expiresAt: now + 3_600n,
    };
    const clientSignature = await signWorkUnit(signerOf(client), domain, workUnit);
    const proof: ProofOfServing = {
      jobId: workUnit.jobId,
      workUnitHash: hashWorkUnit(domain, workUnit),
      outputHash: payloadHash(new TextEncoder().encode(JSON.stringify({ y: [j * 2] }))),
      latencyMs: 40 + j,
      node: node.wallet.account.address,
    };
    const nodeSignature = await signProofOfServing(signerOf(node.wallet), domain, proof);
    const modelRef = { model_id: Number(model.modelId), version: Number(model.version) };
    receipts.push({
      work_unit: workUnitJson(workUnit),
      client_signature: clientSignature,
      proof_of_serving: proofOfServingJson(proof, modelRef, nodeSignature),
    });
    console.log(`  job ${j}: ${node.label} served ${proof.jobId.slice(0, 10)}… in ${proof.latencyMs} ms`);
  }

  say("The oracle (the deployer, a one-member committee) verifies every receipt and splits each fee");
  const schedule = await readFeeSchedule(publicClient, c.epochSettlement.address);
  console.log(
    `  fee schedule: protocol fee ${schedule.protocolFeeBps} bps to ${label(schedule.treasury)}, ` +
      `royalty ${schedule.royaltyBps} bps to the publisher; fee = the model price, ${model.price} base units`,
  );
  const verified: VerifiedReceipt[] = [];
  for (const json of receipts) {
    const receipt = receiptJsonSchema.parse(json);
    const workUnit = workUnitOf(receipt);
    const proof = proofOfServingOf(receipt);
    const clientSigner = await recoverWorkUnitSigner(domain, workUnit, receipt.client_signature);
    const nodeSigner = await recoverProofOfServingSigner(domain, proof, receipt.proof_of_serving.signature);
    if (clientSigner !== workUnit.client) throw new SettlementDemoError(`job ${workUnit.jobId}: client signature`);
    if (nodeSigner !== proof.node) throw new SettlementDemoError(`job ${workUnit.jobId}: node signature`);
    if (proof.workUnitHash !== hashWorkUnit(domain, workUnit)) {
      throw new SettlementDemoError(`job ${workUnit.jobId}: the proof names another work unit`);
    }
    if (model.price > workUnit.maxFee) throw new SettlementDemoError(`job ${workUnit.jobId}: price above max_fee`);
    verified.push({ client: workUnit.client, node: proof.node, fee: model.price, json });
  }
  console.log(`  ${verified.length} receipts: client and node signatures recovered, work-unit hashes match`);

  // Cumulative earnings (this is the chain's first epoch, so cumulative = this epoch's) and debits.
  const epoch = await read<bigint>(c.epochSettlement.address, c.epochSettlement.abi, "nextEpoch");
  const earned = new Map<Address, bigint>();
  const credit = (account: Address, value: bigint) => earned.set(account, (earned.get(account) ?? 0n) + value);
  const debits = new Map<Address, bigint>();
  let fees = 0n;
  let royalties = 0n;
  for (const r of verified) {
    const split = splitFee(r.fee, schedule);
    credit(r.node, split.node);
    credit(model.publisher, split.royalty);
    credit(schedule.treasury, split.protocolFee);
    fees += split.protocolFee;
    royalties += split.royalty;
    debits.set(r.client, (debits.get(r.client) ?? 0n) + r.fee);
  }
  // Slashed stake released to RewardClaims goes to the other nodes of the epoch, by receipts served.
  const redistributedSlash = await read<bigint>(c.rewardClaims.address, c.rewardClaims.abi, "unallocatedSlash");
  const served = nodes.map((n) => BigInt(verified.filter((r) => r.node === n.wallet.account.address).length));
  const slashParts = splitByWeight(redistributedSlash, served);
  nodes.forEach((n, i) => credit(n.wallet.account.address, slashParts[i]!));
  const entries: EarningsEntry[] = [...earned].map(([account, cumulativeAmount]) => ({ account, cumulativeAmount }));
  const tree = buildEarningsTree(entries);
  const batch = JSON.stringify(receipts);
  const settlement: Settlement = {
    epoch,
    earningsRoot: tree.root,
    totalDebits: [...debits.values()].reduce((a, b) => a + b, 0n),
    fees,
    royalties,
    redistributedSlash,
    receiptCount: BigInt(verified.length),
    batchSha256: `0x${createHash("sha256").update(batch).digest("hex")}` as Hex,
  };
  console.log(
    `  epoch ${epoch}: debits ${amount(settlement.totalDebits)}, fees ${amount(fees)}, royalties ${amount(royalties)}, ` +
      `redistributed slash ${amount(redistributedSlash)} INFRA; root ${tree.root.slice(0, 18)}…`,
  );

  say("The committee signs and posts the settlement; the challenge window passes; anyone finalises");
  const signature = await signSettlement(signerOf(oracle), domain, settlement);
  const posted = await send(oracle, c.epochSettlement.address, c.epochSettlement.abi, "post", [
    settlement,
    [signature],
  ]);
  const window = await read<number>(c.epochSettlement.address, c.epochSettlement.abi, "challengeWindow");
  await publicClient.request({ method: "evm_increaseTime" as never, params: [Number(window)] as never });
  await publicClient.request({ method: "evm_mine" as never, params: [] as never });
  const finalised = await send(oracle, c.epochSettlement.address, c.epochSettlement.abi, "finalise", [epoch]);
  console.log(`  post (gas ${posted.gasUsed}), +${window} s, finalise (gas ${finalised.gasUsed})`);

  say("The oracle collects the client debits into RewardClaims (the slashed stake is already there)");
  const packed = packDebits([...debits].map(([account, value]) => ({ client: account, amount: value })));
  const collected = await send(oracle, c.rewardClaims.address, c.rewardClaims.abi, "collectDebits", [
    settlement,
    packed,
  ]);
  console.log(`  collectDebits, ${packed.length} client(s) (gas ${collected.gasUsed})`);

  say(
    "Every account claims with its proof (anyone may submit): paid out of staking's earnings reserve, a " +
      "node's commission accrues to its operator and the rest joins its pool; other accounts are sent theirs",
  );
  const rows: string[][] = [];
  for (const { account, cumulativeAmount } of entries) {
    const claimed = await send(oracle, c.rewardClaims.address, c.rewardClaims.abi, "claim", [
      account,
      cumulativeAmount,
      tree.proof(account),
    ]);
    const [paid] = parseEventLogs({ abi: nodeStakingAbi, eventName: "EarningsPaid", logs: claimed.logs });
    if (paid === undefined) throw new SettlementDemoError(`the claim of ${account} paid nothing (no EarningsPaid)`);
    const { toStakers, commissionAccrued } = paid.args;
    rows.push([
      label(account),
      amount(cumulativeAmount),
      amount(cumulativeAmount - toStakers - commissionAccrued),
      amount(commissionAccrued),
      amount(toStakers),
      String(claimed.gasUsed),
    ]);
  }
  console.log(
    `\n${formatSection(
      `Epoch ${epoch} settlement: ${verified.length} receipts, claims (INFRA)`,
      formatTable(
        [
          { header: "account" },
          { header: "earned", align: "right" },
          { header: "sent", align: "right" },
          { header: "commission accrued", align: "right" },
          { header: "to stakers", align: "right" },
          { header: "claim gas", align: "right" },
        ],
        rows,
      ),
    )}`,
  );

  say("Operators withdraw the commission their claims accrued");
  for (const node of nodes) {
    const withdrawn = await send(node.wallet, c.nodeStaking.address, c.nodeStaking.abi, "withdrawCommission", []);
    const [event] = parseEventLogs({ abi: nodeStakingAbi, eventName: "CommissionWithdrawn", logs: withdrawn.logs });
    console.log(`  ${node.label}: ${amount(event?.args.amount ?? 0n)} INFRA (gas ${withdrawn.gasUsed})`);
  }

  // Everything funded was paid: nothing is left in RewardClaims or the earnings reserve, and the
  // escrow still balances.
  const reserve = await read<bigint>(c.nodeStaking.address, c.nodeStaking.abi, "earningsReserve");
  const left =
    reserve + (await read<bigint>(c.stakeToken.address, c.stakeToken.abi, "balanceOf", [c.rewardClaims.address]));
  const escrowHeld = await read<bigint>(c.stakeToken.address, c.stakeToken.abi, "balanceOf", [c.paymentEscrow.address]);
  const escrowOwed = await read<bigint>(c.paymentEscrow.address, c.paymentEscrow.abi, "totalBalance");
  if (left !== 0n || escrowHeld !== escrowOwed) {
    throw new SettlementDemoError(
      `token accounting broken: claims and the earnings reserve keep ${left}, escrow ${escrowHeld} vs ${escrowOwed}`,
    );
  }
  console.log(
    `\nSettlement balanced: debits ${amount(settlement.totalDebits)} + redistributed slash ${amount(redistributedSlash)} ` +
      `= credits ${amount(entries.reduce((a, e) => a + e.cumulativeAmount, 0n))} INFRA, all claimed; ` +
      `escrow holds ${amount(escrowHeld)} INFRA = client balances`,
  );
}
