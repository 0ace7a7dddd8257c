// Gas of every staking entry point, measured on Hardhat's in-process EVM.
// Prints a table and writes bench/results/staking-gas.json as { metric: number }.
import { mkdir, writeFile } from "node:fs/promises";
import { network } from "hardhat";

const { ethers } = await network.connect();
const signers = await ethers.getSigners();
function signer(index: number) {
  const found = signers[index];
  if (!found) throw new Error(`the network has no signer #${index}`);
  return found;
}
const deployer = signer(0);
const operator = signer(1);
const delegator = signer(2);
const slasher = signer(3);
const rewarder = signer(4);
const recipient = signer(5);

const unit = 10n ** 18n;
const parameters = {
  minSelfStake: 1_000n * unit,
  unbondingPeriod: 7n * 24n * 3600n,
  jailPeriod: 3n * 24n * 3600n,
  maxSlashBps: 1_000,
  burnBps: 5_000,
};
const token = await ethers.deployContract("InframeshToken", [deployer.address, 10n ** 9n * unit]);
const staking = await ethers.deployContract("NodeStaking", [
  await token.getAddress(),
  deployer.address,
  parameters,
  [10_000n * unit, 100_000n * unit],
  recipient.address,
]);
const stakingAddress = await staking.getAddress();
await staking.grantRole(await staking.SLASHER_ROLE(), slasher.address);
await staking.grantRole(await staking.REWARDER_ROLE(), rewarder.address);

const figures: Record<string, number> = {};
async function measure(metric: string, sent: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>) {
  const receipt = await (await sent).wait();
  if (!receipt) throw new Error(`no receipt for ${metric}`);
  figures[metric] = Number(receipt.gasUsed);
}
async function fund(account: { address: string }, amount: bigint) {
  await (await token.transfer(account.address, amount)).wait();
}
// Wallets approve the exact amount before each stake, the common flow.
async function approve(signer: typeof operator, amount: bigint) {
  await (await token.connect(signer).approve(stakingAddress, amount)).wait();
}

for (const s of [operator, delegator, rewarder]) await fund(s, 1_000_000n * unit);

// One-off costs of a fresh deployment, reported apart from the steady-state figures below:
// the contract's first token balance, a node's first unbonding pool, the first slash ever.
const pioneer = signer(7);
await fund(pioneer, 10_000n * unit);
await (await staking.connect(pioneer).registerNode("https://pioneer.example/infer", ethers.ZeroHash, 500)).wait();
await approve(pioneer, 2_000n * unit);
await measure("once_stake_first_on_new_deployment", staking.connect(pioneer).stake(pioneer.address, 2_000n * unit));
await measure(
  "once_slash_first_on_deployment",
  staking.connect(slasher).slash(pioneer.address, 10n * unit, ethers.id("evidence-0")),
);

await (await staking.connect(operator).registerNode("https://node.example/infer", ethers.ZeroHash, 500)).wait();
await approve(operator, 2_000n * unit);
await measure("stake_first", staking.connect(operator).stake(operator.address, 2_000n * unit));
await approve(operator, 500n * unit);
await measure("stake_topup", staking.connect(operator).stake(operator.address, 500n * unit));
await approve(delegator, 1_000n * unit);
await measure("delegate_first", staking.connect(delegator).stake(operator.address, 1_000n * unit));
await approve(delegator, 1_000n * unit);
await measure("delegate_topup", staking.connect(delegator).stake(operator.address, 1_000n * unit));
await measure("once_unbond_first_on_node", staking.connect(delegator).unbond(operator.address, 300n * unit));
await measure("unbond", staking.connect(delegator).unbond(operator.address, 300n * unit));
await measure("rebond", staking.connect(delegator).rebond(operator.address, 1n));
await ethers.provider.send("evm_increaseTime", [Number(parameters.unbondingPeriod)]);
await measure("withdraw", staking.connect(delegator).withdraw(operator.address, 0n));
await approve(rewarder, 100n * unit);
await measure("add_rewards_compounding", staking.connect(rewarder).addRewards(operator.address, 100n * unit));
await measure(
  "slash_1_delegator",
  staking.connect(slasher).slash(operator.address, 10n * unit, ethers.id("evidence-1")),
);

// A second node with 1,000 delegators: a slash touches two pool slots, whatever the count.
const crowded = signer(6);
await fund(crowded, 10_000n * unit);
await (await staking.connect(crowded).registerNode("https://crowded.example/infer", ethers.ZeroHash, 500)).wait();
await approve(crowded, 2_000n * unit);
await (await staking.connect(crowded).stake(crowded.address, 2_000n * unit)).wait();
const delegatorCount = 1_000;
const funder = new ethers.Wallet(ethers.hexlify(ethers.randomBytes(32)), ethers.provider);
await (await deployer.sendTransaction({ to: funder.address, value: 10n ** 21n })).wait();
for (let i = 0; i < delegatorCount; i++) {
  const wallet = ethers.Wallet.createRandom(ethers.provider);
  await ethers.provider.send("hardhat_setBalance", [wallet.address, "0x56BC75E2D63100000"]);
  await token.transfer(wallet.address, 10n * unit);
  await token.connect(wallet).approve(stakingAddress, 10n * unit);
  await staking.connect(wallet).stake(crowded.address, 10n * unit);
}
await measure(
  "slash_1000_delegators",
  staking.connect(slasher).slash(crowded.address, 10n * unit, ethers.id("evidence-2")),
);
await measure("release_slashed_stake", staking.releaseSlashedStake());

const targets: Record<string, number> = {
  stake_first: 100_000,
  stake_topup: 55_000,
  unbond: 80_000,
  withdraw: 45_000,
  slash_1_delegator: 90_000,
  slash_1000_delegators: 90_000,
};
const rows = Object.entries(figures).map(([metric, gas]) => ({
  metric,
  gas,
  target: targets[metric] ?? "",
  ok: targets[metric] === undefined ? "" : gas <= targets[metric]! ? "yes" : "NO",
}));
console.table(rows);
figures.slash_ratio_1000_vs_1 = figures.slash_1000_delegators! / figures.slash_1_delegator!;
console.log(`slash gas at 1,000 delegators / at 1 delegator: ${figures.slash_ratio_1000_vs_1.toFixed(3)}`);
await mkdir(new URL("./results/", import.meta.url), { recursive: true });
await writeFile(new URL("./results/staking-gas.json", import.meta.url), JSON.stringify(figures, null, 2) + "\n");
const missed = rows.filter((r) => r.ok === "NO");
if (missed.length > 0) {
  console.error(`targets missed: ${missed.map((r) => r.metric).join(", ")}`);
  process.exitCode = 1;
}
