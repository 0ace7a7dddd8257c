import { expect } from "chai";
import { Wallet } from "ethers";
import { type Address, type Hex, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

import {
  type EarningsEntry,
  buildEarningsTree,
  earningsLeaf,
  EARNINGS_LEAF_TAG,
  packDebits,
} from "../../sdk/earnings.ts";
import { type Settlement, inframeshDomain, signSettlement } from "../../sdk/eip712.ts";
import type { EpochSettlement, PaymentEscrow, RewardClaims } from "../../types/ethers-contracts/index.js";
import {
  DAY,
  type Signer,
  type StakingFixture,
  deployStakingFixture,
  encodeCall,
  ethers,
  governanceCall,
  loadFixture,
  registerAndStake,
  time,
  tokens,
} from "./fixtures.ts";

// ------------------------------------------------------------------ fixtures

const CHALLENGE_WINDOW = DAY;
const WITHDRAWAL_DELAY = 7n * DAY;
const DEPOSIT = tokens(10_000);

type Oracle = { account: PrivateKeyAccount; wallet: Wallet; address: Address };

type ClaimsFixture = StakingFixture & {
  settlement: EpochSettlement;
  escrow: PaymentEscrow;
  claims: RewardClaims;
  claimsAddress: string;
  chainId: bigint;
  oracles: [Oracle, Oracle];
  clients: [Signer, Signer, Signer];
  publisher: Signer;
  treasury: Signer;
};

async function makeOracle(funder: Signer): Promise<Oracle> {
  const key = generatePrivateKey();
  const account = privateKeyToAccount(key);
  const wallet = new Wallet(key, ethers.provider);
  await (await funder.sendTransaction({ to: account.address, value: ethers.parseEther("10") })).wait();
  return { account, wallet, address: account.address };
}

/**
 * Staking as in production, an escrow and a 2-of-2 settlement committee, RewardClaims holding
 * SETTLEMENT_ROLE on the escrow and named staking's redistribution recipient (through the timelock),
 * which makes it the funder and payer of staking's earnings reserve.
 * Node 0 (5% commission) has its operator's self-stake and one delegator, node 1 (20%) only
 * self-stake, node 2 is registered without stake. Three clients deposited `DEPOSIT` each.
 */
async function deployClaimsFixture(): Promise<ClaimsFixture> {
  const fx = await deployStakingFixture();
  const signers = await ethers.getSigners();
  const [publisher, treasury, c0, c1, c2] = signers.slice(13, 18);
  if (!publisher || !treasury || !c0 || !c1 || !c2) throw new Error("not enough signers");
  const made = [await makeOracle(fx.deployer), await makeOracle(fx.deployer)].sort((a, b) =>
    BigInt(a.address) < BigInt(b.address) ? -1 : 1,
  );
  const oracles = made as [Oracle, Oracle];
  const settlement = await ethers.deployContract("EpochSettlement", [
    fx.deployer.address,
    oracles.map((o) => o.address),
    2,
    CHALLENGE_WINDOW,
    { treasury: treasury.address, protocolFeeBps: 500, royaltyBps: 1_000 },
  ]);
  const tokenAddress = await fx.token.getAddress();
  const escrow = await ethers.deployContract("PaymentEscrow", [tokenAddress, fx.deployer.address, WITHDRAWAL_DELAY]);
  const claims = await ethers.deployContract("RewardClaims", [
    await settlement.getAddress(),
    await escrow.getAddress(),
    fx.stakingAddress,
    tokenAddress,
  ]);
  const claimsAddress = await claims.getAddress();
  await (await escrow.grantRole(await escrow.SETTLEMENT_ROLE(), claimsAddress)).wait();
  await governanceCall(fx.gov, await encodeCall(fx.staking, "setRedistributionRecipient", [claimsAddress]));

  await registerAndStake(fx, fx.operators[0], tokens(1_000), 500);
  await (await fx.staking.connect(fx.delegators[0]).stake(fx.operators[0].address, tokens(3_000))).wait();
  await registerAndStake(fx, fx.operators[1], tokens(1_000), 2_000);
  await registerAndStake(fx, fx.operators[2], 0n, 500);

  const clients: [Signer, Signer, Signer] = [c0, c1, c2];
  for (const client of clients) {
    await (await fx.token.transfer(client.address, DEPOSIT)).wait();
    await (await fx.token.connect(client).approve(await escrow.getAddress(), DEPOSIT)).wait();
    await (await escrow.connect(client).deposit(DEPOSIT)).wait();
  }
  const { chainId } = await ethers.provider.getNetwork();
  return { ...fx, settlement, escrow, claims, claimsAddress, chainId, oracles, clients, publisher, treasury };
}

function settlementFor(epoch: bigint, root: Hex, totalDebits: bigint, overrides: Partial<Settlement> = {}): Settlement {
  return {
    epoch,
    earningsRoot: root,
    totalDebits,
    fees: 0n,
    royalties: 0n,
    redistributedSlash: 0n,
    receiptCount: 10n,
    batchSha256: toHex(ethers.randomBytes(32)),
    ...overrides,
  };
}

/** Posts `settlement` with both oracles' signatures and waits out the challenge window. */
async function postAndFinalise(fx: ClaimsFixture, settlement: Settlement): Promise<void> {
  const domain = inframeshDomain(fx.chainId, (await fx.settlement.getAddress()) as Address);
  const signatures = await Promise.all(fx.oracles.map((o) => signSettlement(o.account, domain, settlement)));
  await (await fx.settlement.post(settlement, signatures)).wait();
  await time.increase(CHALLENGE_WINDOW);
  await (await fx.settlement.finalise(settlement.epoch)).wait();
}

type Debits = { clients: string[]; amounts: bigint[] };

const packed = (clients: readonly string[], amounts: readonly bigint[]): string[] =>
  packDebits(clients.map((client, i) => ({ client: client as Address, amount: amounts[i]! })));

/** Epoch `epoch`: posts and finalises a settlement of `entries`, then collects `debits`. */
async function settleEpoch(
  fx: ClaimsFixture,
  epoch: bigint,
  entries: EarningsEntry[],
  debits: Debits,
): Promise<{ settlement: Settlement; tree: ReturnType<typeof buildEarningsTree> }> {
  const tree = buildEarningsTree(entries);
  const total = debits.amounts.reduce((a, b) => a + b, 0n);
  const settlement = settlementFor(epoch, tree.root, total);
  await postAndFinalise(fx, settlement);
  await (
    await fx.claims.connect(fx.oracles[0].wallet).collectDebits(settlement, packed(debits.clients, debits.amounts))
  ).wait();
  return { settlement, tree };
}

/** Epoch 0: the three clients pay 100 + 200 + 300; node 0 earns 400, node 1 100, the publisher 60, the treasury 40. */
function epoch0(fx: ClaimsFixture): { entries: EarningsEntry[]; debits: Debits } {
  return {
    entries: [
      { account: fx.operators[0].address as Address, cumulativeAmount: tokens(400) },
      { account: fx.operators[1].address as Address, cumulativeAmount: tokens(100) },
      { account: fx.publisher.address as Address, cumulativeAmount: tokens(60) },
      { account: fx.treasury.address as Address, cumulativeAmount: tokens(40) },
    ],
    debits: { clients: fx.clients.map((c) => c.address), amounts: [tokens(100), tokens(200), tokens(300)] },
  };
}

async function fundedFixture() {
  const fx = await deployClaimsFixture();
  const { entries, debits } = epoch0(fx);
  const { settlement: posted, tree } = await settleEpoch(fx, 0n, entries, debits);
  return { ...fx, posted, tree, entries };
}

/** Every token of the fixture is somewhere: sum over all holders is constant. */
async function holdings(fx: ClaimsFixture, extra: readonly { address: string }[] = []): Promise<bigint> {
  const holders = [
    fx.claimsAddress,
    await fx.escrow.getAddress(),
    fx.stakingAddress,
    ...[...fx.operators, ...fx.delegators, ...fx.clients, fx.publisher, fx.treasury, fx.deployer, fx.rewarder].map(
      (s) => s.address,
    ),
    ...extra.map((s) => s.address),
  ];
  let sum = 0n;
  for (const holder of holders) sum += await fx.token.balanceOf(holder);
  return sum;
}

/** Funded epochs left nothing in the claims contract, and staking's reserve is what was funded minus every claim. */
async function expectClaimsSolvent(fx: ClaimsFixture): Promise<void> {
  const [funded, paid] = await fx.claims.totals();
  let claimed = 0n;
  for (const account of [...fx.operators, ...fx.delegators, fx.publisher, fx.treasury, fx.outsider]) {
    claimed += await fx.claims.claimed(account.address);
  }
  expect(paid).to.equal(claimed, "paid != the sum of claimed(account)");
  expect(await fx.staking.earningsReserve()).to.equal(funded - claimed, "earnings reserve != funded - claimed");
  expect(await fx.token.balanceOf(fx.claimsAddress)).to.equal(await fx.claims.unallocatedSlash());
}

// ------------------------------------------------------------------ tests

describe("RewardClaims", function () {
  describe("deployment", function () {
    it("stores its contracts and approves staking; leaf hashing matches the sdk", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      expect(await fx.claims.SETTLEMENT()).to.equal(await fx.settlement.getAddress());
      expect(await fx.claims.ESCROW()).to.equal(await fx.escrow.getAddress());
      expect(await fx.claims.STAKING()).to.equal(fx.stakingAddress);
      expect(await fx.claims.TOKEN()).to.equal(await fx.token.getAddress());
      expect(await fx.claims.EARNINGS_LEAF_TAG()).to.equal(EARNINGS_LEAF_TAG);
      expect(await fx.claims.EARNINGS_LEAF_TAG()).to.equal(ethers.id("Inframesh.EarningsLeaf.v1"));
      expect(await fx.token.allowance(fx.claimsAddress, fx.stakingAddress)).to.equal(ethers.MaxUint256);
      expect(await fx.claims.nextEpoch()).to.equal(0n);
      expect(await fx.claims.latestRoot()).to.deep.equal([false, 0n, ethers.ZeroHash]);
      for (const amount of [0n, 1n, tokens(123), ethers.MaxUint256]) {
        const account = fx.publisher.address as Address;
        expect(await fx.claims.leafHash(account, amount)).to.equal(earningsLeaf(account, amount));
      }
    });

    it("refuses zero addresses and an escrow or staking token other than the payout token", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const [s, e, k, t] = [
        await fx.settlement.getAddress(),
        await fx.escrow.getAddress(),
        fx.stakingAddress,
        await fx.token.getAddress(),
      ];
      const factory = await ethers.getContractFactory("RewardClaims");
      const zero = ethers.ZeroAddress;
      await expect(factory.deploy(zero, e, k, t))
        .to.be.revertedWithCustomError(fx.claims, "ZeroAddress")
        .withArgs("settlement");
      await expect(factory.deploy(s, zero, k, t))
        .to.be.revertedWithCustomError(fx.claims, "ZeroAddress")
        .withArgs("escrow");
      await expect(factory.deploy(s, e, zero, t))
        .to.be.revertedWithCustomError(fx.claims, "ZeroAddress")
        .withArgs("staking");
      const other = await ethers.deployContract("InframeshToken", [fx.deployer.address, tokens(1)]);
      const otherEscrow = await ethers.deployContract("PaymentEscrow", [
        await other.getAddress(),
        fx.deployer.address,
        WITHDRAWAL_DELAY,
      ]);
      await expect(factory.deploy(s, await otherEscrow.getAddress(), k, t))
        .to.be.revertedWithCustomError(fx.claims, "TokenMismatch")
        .withArgs(await other.getAddress(), t);
      await expect(factory.deploy(s, e, k, await other.getAddress()))
        .to.be.revertedWithCustomError(fx.claims, "TokenMismatch")
        .withArgs(t, t);
    });
  });

  describe("collectDebits", function () {
    it("debits the clients of the final settlement into staking's earnings reserve and makes its root current", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const { entries, debits } = epoch0(fx);
      const tree = buildEarningsTree(entries);
      const settlement = settlementFor(0n, tree.root, tokens(600));
      await postAndFinalise(fx, settlement);
      const before = await holdings(fx);
      const sent = fx.claims
        .connect(fx.oracles[1].wallet)
        .collectDebits(settlement, packed(debits.clients, debits.amounts));
      await expect(sent)
        .to.emit(fx.claims, "DebitsCollected")
        .withArgs(0n, tree.root, tokens(600), 0n, 3n)
        .and.to.emit(fx.escrow, "DebitedPacked")
        .withArgs(fx.claimsAddress, packed(debits.clients, debits.amounts), tokens(600))
        .and.to.emit(fx.staking, "EarningsFunded")
        .withArgs(fx.claimsAddress, tokens(600));
      expect(await fx.escrow.balanceOf(fx.clients[0].address)).to.equal(DEPOSIT - tokens(100));
      expect(await fx.token.balanceOf(fx.claimsAddress)).to.equal(0n);
      expect(await fx.staking.earningsReserve()).to.equal(tokens(600));
      expect(await fx.claims.totals()).to.deep.equal([tokens(600), 0n]);
      expect(await fx.claims.latestRoot()).to.deep.equal([true, 0n, tree.root]);
      expect(await fx.claims.nextEpoch()).to.equal(1n);
      expect(await holdings(fx)).to.equal(before);
    });

    it("funds an epoch with no debits", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const tree = buildEarningsTree([{ account: fx.treasury.address as Address, cumulativeAmount: 0n }]);
      const settlement = settlementFor(0n, tree.root, 0n);
      await postAndFinalise(fx, settlement);
      await expect(fx.claims.connect(fx.oracles[0].wallet).collectDebits(settlement, packed([], [])))
        .to.emit(fx.claims, "DebitsCollected")
        .withArgs(0n, tree.root, 0n, 0n, 0n);
    });

    it("is for committee members only", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const settlement = settlementFor(0n, ethers.ZeroHash as Hex, 0n);
      await postAndFinalise(fx, settlement);
      await expect(fx.claims.connect(fx.outsider).collectDebits(settlement, packed([], [])))
        .to.be.revertedWithCustomError(fx.claims, "NotAnOracle")
        .withArgs(fx.outsider.address);
    });

    it("needs a final settlement: not posted, posted in its window, or voided", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const settlement = settlementFor(0n, ethers.ZeroHash as Hex, 0n);
      const collect = () => fx.claims.connect(fx.oracles[0].wallet).collectDebits(settlement, packed([], []));
      await expect(collect()).to.be.revertedWithCustomError(fx.claims, "NotFinal").withArgs(0n, 0n);
      const domain = inframeshDomain(fx.chainId, (await fx.settlement.getAddress()) as Address);
      const signatures = await Promise.all(fx.oracles.map((o) => signSettlement(o.account, domain, settlement)));
      await (await fx.settlement.post(settlement, signatures)).wait();
      await expect(collect()).to.be.revertedWithCustomError(fx.claims, "NotFinal").withArgs(0n, 1n);
      await (await fx.settlement.connect(fx.oracles[0].wallet).voidSettlement(0n, "test")).wait();
      await expect(collect()).to.be.revertedWithCustomError(fx.claims, "NotFinal").withArgs(0n, 2n);
    });

    it("refuses a settlement other than the one finalised (any field changed)", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const settlement = settlementFor(0n, ethers.ZeroHash as Hex, tokens(100));
      await postAndFinalise(fx, settlement);
      const changed = { ...settlement, earningsRoot: ethers.id("other") as Hex };
      const recorded = (await fx.settlement.settlementOf(0n)).settlementHash;
      await expect(
        fx.claims.connect(fx.oracles[0].wallet).collectDebits(changed, packed([fx.clients[0].address], [tokens(100)])),
      )
        .to.be.revertedWithCustomError(fx.claims, "SettlementMismatch")
        .withArgs(0n, await fx.settlement.hashSettlement(changed), recorded);
    });

    it("refuses debits that do not sum to the settlement's total", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const settlement = settlementFor(0n, ethers.ZeroHash as Hex, tokens(100));
      await postAndFinalise(fx, settlement);
      await expect(
        fx.claims
          .connect(fx.oracles[0].wallet)
          .collectDebits(settlement, packed([fx.clients[0].address], [tokens(99)])),
      )
        .to.be.revertedWithCustomError(fx.claims, "DebitsMismatch")
        .withArgs(0n, tokens(99), tokens(100));
    });

    it("is applied once per epoch, in order", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(
        fx.claims
          .connect(fx.oracles[0].wallet)
          .collectDebits(fx.posted, packed([fx.clients[0].address], [tokens(600)])),
      )
        .to.be.revertedWithCustomError(fx.claims, "UnexpectedEpoch")
        .withArgs(0n, 1n);
      expect(await fx.escrow.balanceOf(fx.clients[0].address)).to.equal(DEPOSIT - tokens(100));
    });

    it("refuses malformed packed debits: a zero amount, a short balance; nothing moves", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const settlement = settlementFor(0n, ethers.ZeroHash as Hex, DEPOSIT + 1n);
      await postAndFinalise(fx, settlement);
      const client = fx.clients[0].address;
      const zero = client.toLowerCase() + "0".repeat(24); // the client's address, amount 0
      const collect = (debits: string[]) => fx.claims.connect(fx.oracles[0].wallet).collectDebits(settlement, debits);
      await expect(collect([zero])).to.be.revertedWithCustomError(fx.escrow, "ZeroAmount");
      await expect(collect(packed([client], [DEPOSIT + 1n])))
        .to.be.revertedWithCustomError(fx.escrow, "InsufficientBalance")
        .withArgs(client, DEPOSIT, DEPOSIT + 1n);
      expect(await fx.escrow.balanceOf(client)).to.equal(DEPOSIT);
      expect(await fx.claims.nextEpoch()).to.equal(0n);
      expect(() => packed([client], [0n])).to.throw(/amount 0 must be between 1 and 2\^96 - 1/);
      expect(() => packed([client], [1n << 96n])).to.throw(/must be between 1 and 2\^96 - 1/);
    });
  });

  describe("earnings tree: TypeScript vs chain", function () {
    // Seven accounts 0x…01 .. 0x…07 earning 1 .. 7 tokens: an odd leaf count, so an odd node moves
    // up a layer. The root is pinned: an implementation in another language must reproduce it.
    const VECTOR_ENTRIES: EarningsEntry[] = Array.from({ length: 7 }, (_, i) => ({
      account: `0x${(i + 1).toString(16).padStart(40, "0")}` as Address,
      cumulativeAmount: tokens(i + 1),
    }));
    const VECTOR_ROOT = "0x4654164e5fa8ea9c53405254a8423f9933fd6b2579bdc2672ad3f014741efc1d";

    it("the sdk reproduces the pinned root, whatever the order of the entries", function () {
      expect(buildEarningsTree(VECTOR_ENTRIES).root).to.equal(VECTOR_ROOT);
      expect(buildEarningsTree([...VECTOR_ENTRIES].reverse()).root).to.equal(VECTOR_ROOT);
      expect(() => buildEarningsTree([])).to.throw(/at least one entry/);
      expect(() => buildEarningsTree([VECTOR_ENTRIES[0]!, VECTOR_ENTRIES[0]!])).to.throw(/appears twice/);
    });

    it("RewardClaims accepts the TypeScript root and every TypeScript proof, and pays each account", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const total = VECTOR_ENTRIES.reduce((sum, e) => sum + e.cumulativeAmount, 0n);
      const { tree } = await settleEpoch(fx, 0n, VECTOR_ENTRIES, {
        clients: [fx.clients[0].address],
        amounts: [total],
      });
      expect(await fx.claims.latestRoot()).to.deep.equal([true, 0n, VECTOR_ROOT]);
      for (const { account, cumulativeAmount } of VECTOR_ENTRIES) {
        expect(await fx.claims.leafHash(account, cumulativeAmount)).to.equal(earningsLeaf(account, cumulativeAmount));
        await expect(fx.claims.claim(account, cumulativeAmount, tree.proof(account))).to.changeTokenBalance(
          ethers,
          fx.token,
          account,
          cumulativeAmount,
        );
      }
      expect(await fx.claims.totals()).to.deep.equal([total, total]);
    });
  });

  describe("slash redistribution", function () {
    /** Node 1 slashed by `amount` and the slashed stake released: half (burnBps 50%) reaches the claims contract. */
    async function slashAndRelease(fx: ClaimsFixture, amount: bigint): Promise<bigint> {
      await (await fx.staking.connect(fx.slasher).slash(fx.operators[1].address, amount, ethers.id("evidence"))).wait();
      const [owed] = await fx.staking.slashedOwed();
      await (await fx.staking.releaseSlashedStake()).wait();
      return owed;
    }

    // The claims fixture already names RewardClaims the redistribution recipient.
    const redistributingFixture = deployClaimsFixture;

    it("tracks slashed stake received and not yet allocated, robust to direct transfers", async function () {
      const fx = await loadFixture(redistributingFixture);
      expect(await fx.claims.unallocatedSlash()).to.equal(0n);
      const released = await slashAndRelease(fx, tokens(50));
      expect(released).to.equal(tokens(25));
      expect(await fx.claims.unallocatedSlash()).to.equal(tokens(25));
      await (await fx.token.transfer(fx.claimsAddress, 7n)).wait();
      expect(await fx.claims.unallocatedSlash()).to.equal(tokens(25) + 7n);
    });

    it("funds an epoch with its debits plus the redistributed slash; the other node claims it", async function () {
      const fx = await loadFixture(redistributingFixture);
      const released = await slashAndRelease(fx, tokens(50));
      const start = await holdings(fx);
      const node0 = fx.operators[0].address as Address;
      // Node 0 earns its 90 of the 100 debited, plus all of node 1's redistributed slash.
      const entries: EarningsEntry[] = [
        { account: node0, cumulativeAmount: tokens(90) + released },
        { account: fx.publisher.address as Address, cumulativeAmount: tokens(6) },
        { account: fx.treasury.address as Address, cumulativeAmount: tokens(4) },
      ];
      const tree = buildEarningsTree(entries);
      const settlement = settlementFor(0n, tree.root, tokens(100), {
        fees: tokens(4),
        royalties: tokens(6),
        redistributedSlash: released,
      });
      await postAndFinalise(fx, settlement);
      await expect(
        fx.claims
          .connect(fx.oracles[0].wallet)
          .collectDebits(settlement, packed([fx.clients[0].address], [tokens(100)])),
      )
        .to.emit(fx.claims, "DebitsCollected")
        .withArgs(0n, tree.root, tokens(100), released, 1n);
      expect(await fx.claims.totals()).to.deep.equal([tokens(100) + released, 0n]);
      expect(await fx.claims.unallocatedSlash()).to.equal(0n);
      for (const { account, cumulativeAmount } of entries) {
        await (await fx.claims.claim(account, cumulativeAmount, tree.proof(account))).wait();
      }
      expect(await fx.token.balanceOf(fx.claimsAddress)).to.equal(0n);
      expect(await fx.staking.earningsReserve()).to.equal(0n);
      expect(await fx.claims.totals()).to.deep.equal([tokens(100) + released, tokens(100) + released]);
      expect(await holdings(fx)).to.equal(start);
    });

    it("refuses to redistribute more slashed stake than was received and not yet allocated", async function () {
      const fx = await loadFixture(redistributingFixture);
      const released = await slashAndRelease(fx, tokens(50));
      const settlement = settlementFor(0n, ethers.ZeroHash as Hex, 0n, { redistributedSlash: released + 1n });
      await postAndFinalise(fx, settlement);
      await expect(fx.claims.connect(fx.oracles[0].wallet).collectDebits(settlement, []))
        .to.be.revertedWithCustomError(fx.claims, "InsufficientSlashedStake")
        .withArgs(released + 1n, released);
    });

    it("debits arriving in the same funding are not slashed stake; funded epochs' tokens are never reallocated", async function () {
      const fx = await loadFixture(redistributingFixture);
      // Epoch 0 funds 600 of debits; nothing is claimed, so staking's reserve holds 600.
      const { entries, debits } = epoch0(fx);
      await settleEpoch(fx, 0n, entries, debits);
      expect(await fx.staking.earningsReserve()).to.equal(tokens(600));
      expect(await fx.claims.unallocatedSlash()).to.equal(0n);
      const settlement = settlementFor(1n, ethers.ZeroHash as Hex, tokens(100), { redistributedSlash: 1n });
      await postAndFinalise(fx, settlement);
      await expect(
        fx.claims
          .connect(fx.oracles[0].wallet)
          .collectDebits(settlement, packed([fx.clients[0].address], [tokens(100)])),
      )
        .to.be.revertedWithCustomError(fx.claims, "InsufficientSlashedStake")
        .withArgs(1n, 0n);
    });
  });

  describe("claim", function () {
    it("reverts before any settlement is funded", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      await expect(fx.claims.claim(fx.treasury.address, 1n, [])).to.be.revertedWithCustomError(
        fx.claims,
        "NoFinalSettlement",
      );
    });

    it("accrues a node's commission to its operator and adds the rest to its pool, moving no token", async function () {
      const fx = await loadFixture(fundedFixture);
      const node = fx.operators[0].address;
      const before = await holdings(fx);
      const poolBefore = await fx.staking.activePool(node);
      const delegatorBefore = await fx.staking.stakeOf(node, fx.delegators[0].address);
      const operatorBefore = await fx.token.balanceOf(node);
      const commission = (tokens(400) * 500n) / 10_000n;
      const sent = fx.claims.connect(fx.outsider).claim(node, tokens(400), fx.tree.proof(node as Address));
      await expect(sent)
        .to.emit(fx.claims, "Claimed")
        .withArgs(node, tokens(400), tokens(400))
        .and.to.emit(fx.staking, "EarningsPaid")
        .withArgs(node, tokens(400), tokens(400) - commission, commission);
      await expect(sent).to.not.emit(fx.token, "Transfer");
      expect(await fx.token.balanceOf(node)).to.equal(operatorBefore);
      expect((await fx.staking.nodeInfo(node)).commissionOwed).to.equal(commission);
      expect((await fx.staking.activePool(node)).stake).to.equal(poolBefore.stake + tokens(400) - commission);
      // The delegator holds 3/4 of the pool's shares: its stake grows by about 3/4 of the reward.
      const delegatorAfter = await fx.staking.stakeOf(node, fx.delegators[0].address);
      expect(delegatorAfter - delegatorBefore).to.be.closeTo(((tokens(400) - commission) * 3n) / 4n, 10n);
      expect(await fx.claims.claimed(node)).to.equal(tokens(400));
      expect(await holdings(fx)).to.equal(before);
      await expectClaimsSolvent(fx);
      // The operator takes its commission when it likes.
      await expect(fx.staking.connect(fx.operators[0]).withdrawCommission()).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.operators[0], fx.staking],
        [commission, -commission],
      );
    });

    it("sends publishers and the treasury their amount, and accrues all of a node without stakers to its operator", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const idle = fx.operators[2].address as Address;
      const entries: EarningsEntry[] = [
        { account: fx.publisher.address as Address, cumulativeAmount: tokens(60) },
        { account: fx.treasury.address as Address, cumulativeAmount: tokens(40) },
        { account: idle, cumulativeAmount: tokens(50) },
      ];
      const { tree } = await settleEpoch(fx, 0n, entries, { clients: [fx.clients[0].address], amounts: [tokens(150)] });
      for (const { account, cumulativeAmount } of entries) {
        const before = await fx.token.balanceOf(account);
        const isNode = account === idle;
        await expect(fx.claims.claim(account, cumulativeAmount, tree.proof(account)))
          .to.emit(fx.claims, "Claimed")
          .withArgs(account, cumulativeAmount, cumulativeAmount)
          .and.to.emit(fx.staking, "EarningsPaid")
          .withArgs(account, cumulativeAmount, 0n, isNode ? cumulativeAmount : 0n);
        expect(await fx.token.balanceOf(account)).to.equal(isNode ? before : before + cumulativeAmount);
      }
      expect((await fx.staking.nodeInfo(idle)).commissionOwed).to.equal(tokens(50));
      expect(await fx.claims.totals()).to.deep.equal([tokens(150), tokens(150)]);
      await expectClaimsSolvent(fx);
    });

    it("refuses a bad proof: wrong amount, wrong account, another leaf's proof, a tampered proof", async function () {
      const fx = await loadFixture(fundedFixture);
      const node = fx.operators[0].address as Address;
      const proof = fx.tree.proof(node);
      await expect(fx.claims.claim(node, tokens(401), proof))
        .to.be.revertedWithCustomError(fx.claims, "InvalidProof")
        .withArgs(node, tokens(401));
      await expect(fx.claims.claim(fx.outsider.address, tokens(400), proof))
        .to.be.revertedWithCustomError(fx.claims, "InvalidProof")
        .withArgs(fx.outsider.address, tokens(400));
      await expect(fx.claims.claim(node, tokens(400), fx.tree.proof(fx.publisher.address as Address)))
        .to.be.revertedWithCustomError(fx.claims, "InvalidProof")
        .withArgs(node, tokens(400));
      await expect(fx.claims.claim(node, tokens(400), [...proof.slice(1), ethers.ZeroHash]))
        .to.be.revertedWithCustomError(fx.claims, "InvalidProof")
        .withArgs(node, tokens(400));
    });

    it("cannot be applied twice", async function () {
      const fx = await loadFixture(fundedFixture);
      const account = fx.publisher.address as Address;
      await (await fx.claims.claim(account, tokens(60), fx.tree.proof(account))).wait();
      await expect(fx.claims.claim(account, tokens(60), fx.tree.proof(account)))
        .to.be.revertedWithCustomError(fx.claims, "NothingToClaim")
        .withArgs(account, tokens(60), tokens(60));
    });

    it("after a later epoch pays only the difference; the old root no longer proves", async function () {
      const fx = await loadFixture(fundedFixture);
      const node = fx.operators[1].address as Address;
      const operator = fx.operators[1];
      await (await fx.claims.claim(node, tokens(100), fx.tree.proof(node))).wait();
      const entries1 = fx.entries.map((e) => ({
        ...e,
        cumulativeAmount: e.account === node ? tokens(250) : e.cumulativeAmount,
      }));
      const { tree: tree1 } = await settleEpoch(fx, 1n, entries1, {
        clients: [fx.clients[1].address],
        amounts: [tokens(150)],
      });
      // The epoch-0 leaf is not in the epoch-1 root.
      await expect(fx.claims.claim(node, tokens(100), fx.tree.proof(node))).to.be.revertedWithCustomError(
        fx.claims,
        "InvalidProof",
      );
      const before = (await fx.staking.nodeInfo(operator.address)).commissionOwed;
      const poolBefore = (await fx.staking.activePool(node)).stake;
      const commission = (tokens(150) * 2_000n) / 10_000n;
      await expect(fx.claims.claim(node, tokens(250), tree1.proof(node)))
        .to.emit(fx.claims, "Claimed")
        .withArgs(node, tokens(250), tokens(150))
        .and.to.emit(fx.staking, "EarningsPaid")
        .withArgs(node, tokens(150), tokens(150) - commission, commission);
      expect((await fx.staking.nodeInfo(operator.address)).commissionOwed).to.equal(before + commission);
      expect((await fx.staking.activePool(node)).stake).to.equal(poolBefore + tokens(150) - commission);
      // An account that never claimed gets both epochs at once (its amount unchanged here: epoch 0's 400).
      const node0 = fx.operators[0].address as Address;
      await expect(fx.claims.claim(node0, tokens(400), tree1.proof(node0)))
        .to.emit(fx.staking, "EarningsPaid")
        .withArgs(node0, tokens(400), tokens(380), tokens(20));
      await expectClaimsSolvent(fx);
    });

    it("never pays more than was funded, whatever the root says", async function () {
      const fx = await loadFixture(deployClaimsFixture);
      const greedy = fx.treasury.address as Address;
      const { tree } = await settleEpoch(fx, 0n, [{ account: greedy, cumulativeAmount: tokens(1_000) }], {
        clients: [fx.clients[0].address],
        amounts: [tokens(10)],
      });
      await expect(fx.claims.claim(greedy, tokens(1_000), tree.proof(greedy)))
        .to.be.revertedWithCustomError(fx.staking, "InsufficientEarningsReserve")
        .withArgs(tokens(1_000), tokens(10));
      expect(await fx.claims.claimed(greedy)).to.equal(0n);
    });

    it("conserves tokens across escrow, claims and staking over two epochs with every account claiming", async function () {
      const fx = await loadFixture(fundedFixture);
      const start = await holdings(fx);
      for (const { account, cumulativeAmount } of fx.entries) {
        await (await fx.claims.claim(account, cumulativeAmount, fx.tree.proof(account))).wait();
      }
      const entries1 = fx.entries.map((e) => ({ ...e, cumulativeAmount: e.cumulativeAmount * 2n }));
      const { tree } = await settleEpoch(fx, 1n, entries1, {
        clients: fx.clients.map((c) => c.address),
        amounts: [tokens(100), tokens(200), tokens(300)],
      });
      for (const { account, cumulativeAmount } of entries1) {
        await (await fx.claims.claim(account, cumulativeAmount, tree.proof(account))).wait();
      }
      expect(await holdings(fx)).to.equal(start);
      expect(await fx.claims.totals()).to.deep.equal([tokens(1_200), tokens(1_200)]);
      expect(await fx.token.balanceOf(fx.claimsAddress)).to.equal(0n);
      await expectClaimsSolvent(fx);
      const escrowHeld = await fx.token.balanceOf(await fx.escrow.getAddress());
      expect(escrowHeld).to.equal(await fx.escrow.totalBalance());
      expect(escrowHeld).to.equal(3n * DEPOSIT - tokens(1_200));
    });
  });
});
