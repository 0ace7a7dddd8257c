import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";

import type { InframeshToken, PaymentEscrow } from "../../types/ethers-contracts/index.js";
import { expectMissingRole } from "./behaviours.ts";
import {
  DAY,
  FUNDING,
  INITIAL_SUPPLY,
  type Governance,
  type Signer,
  deployTimelock,
  encodeCall,
  ethers,
  governanceCall,
  loadFixture,
  time,
  tokens,
} from "./fixtures.ts";

// ------------------------------------------------------------------ fixtures

const WITHDRAWAL_DELAY = 3n * DAY;
const MIN_WITHDRAWAL_DELAY = DAY;
const MAX_WITHDRAWAL_DELAY = 90n * DAY;

type EscrowFixture = {
  token: InframeshToken;
  escrow: PaymentEscrow;
  escrowAddress: string;
  gov: Governance;
  deployer: Signer;
  settlement: Signer;
  clients: [Signer, Signer, Signer];
  outsider: Signer;
  roles: { admin: string; settlement: string };
};

/**
 * Token, timelock and PaymentEscrow wired as in production: the deployer grants SETTLEMENT_ROLE
 * (to a signer standing in for the settlement contract), hands DEFAULT_ADMIN_ROLE to the timelock
 * and renounces its own. Clients hold `FUNDING` tokens each with an unlimited approval.
 */
async function deployEscrowFixture(): Promise<EscrowFixture> {
  const [deployer, governor, settlement, a, b, c, outsider] = await ethers.getSigners();
  if (!deployer || !governor || !settlement || !a || !b || !c || !outsider) throw new Error("not enough signers");
  const token = await ethers.deployContract("InframeshToken", [deployer.address, INITIAL_SUPPLY]);
  const gov = await deployTimelock(governor);
  const escrow = await ethers.deployContract("PaymentEscrow", [
    await token.getAddress(),
    deployer.address,
    WITHDRAWAL_DELAY,
  ]);
  const escrowAddress = await escrow.getAddress();
  const roles = { admin: await escrow.DEFAULT_ADMIN_ROLE(), settlement: await escrow.SETTLEMENT_ROLE() };
  await (await escrow.grantRole(roles.settlement, settlement.address)).wait();
  await (await escrow.grantRole(roles.admin, await gov.timelock.getAddress())).wait();
  await (await escrow.renounceRole(roles.admin, deployer.address)).wait();
  const clients: [Signer, Signer, Signer] = [a, b, c];
  for (const client of clients) {
    await (await token.transfer(client.address, FUNDING)).wait();
    await (await token.connect(client).approve(escrowAddress, ethers.MaxUint256)).wait();
  }
  return { token, escrow, escrowAddress, gov, deployer, settlement, clients, outsider, roles };
}

/** Client 0 holds 1,000 tokens in escrow, client 1 holds 500. */
async function fundedFixture(): Promise<EscrowFixture> {
  const fx = await deployEscrowFixture();
  await (await fx.escrow.connect(fx.clients[0]).deposit(tokens(1_000))).wait();
  await (await fx.escrow.connect(fx.clients[1]).deposit(tokens(500))).wait();
  return fx;
}

/** fundedFixture plus a request by client 0 to withdraw 400 tokens. */
async function requestedFixture(): Promise<EscrowFixture> {
  const fx = await fundedFixture();
  await (await fx.escrow.connect(fx.clients[0]).requestWithdrawal(tokens(400))).wait();
  return fx;
}

// ------------------------------------------------------------------ helpers

async function timestampOf(sent: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await sent).wait();
  if (!receipt) throw new Error("no receipt");
  const block = await ethers.provider.getBlock(receipt.blockNumber);
  if (!block) throw new Error("no block");
  return BigInt(block.timestamp);
}

/** Token conservation: the escrow's token balance equals totalBalance equals the sum of the clients' balances. */
async function expectConserved(fx: EscrowFixture): Promise<void> {
  let sum = 0n;
  for (const client of fx.clients) sum += await fx.escrow.balanceOf(client.address);
  const total = await fx.escrow.totalBalance();
  expect(total).to.equal(sum, "totalBalance != sum of balances");
  expect(await fx.token.balanceOf(fx.escrowAddress)).to.equal(total, "token balance != totalBalance");
}

const setDelay = (fx: EscrowFixture, delay: bigint) =>
  encodeCall(fx.escrow, "setWithdrawalDelay", [delay]).then((call) => governanceCall(fx.gov, call));

async function signPermit(
  fx: EscrowFixture,
  owner: Signer,
  value: bigint,
  deadline: bigint,
): Promise<{ v: number; r: string; s: string }> {
  const { chainId } = await ethers.provider.getNetwork();
  const signature = await owner.signTypedData(
    { name: await fx.token.name(), version: "1", chainId, verifyingContract: await fx.token.getAddress() },
    {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    { owner: owner.address, spender: fx.escrowAddress, value, nonce: await fx.token.nonces(owner.address), deadline },
  );
  const { v, r, s } = ethers.Signature.from(signature);
  return { v, r, s };
}

// ------------------------------------------------------------------ tests

describe("PaymentEscrow", function () {
  describe("deployment", function () {
    it("stores the token and the withdrawal delay, and exposes its constants", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      expect(await fx.escrow.PAYMENT_TOKEN()).to.equal(await fx.token.getAddress());
      expect(await fx.escrow.withdrawalDelay()).to.equal(WITHDRAWAL_DELAY);
      expect(await fx.escrow.MIN_WITHDRAWAL_DELAY()).to.equal(MIN_WITHDRAWAL_DELAY);
      expect(await fx.escrow.MAX_WITHDRAWAL_DELAY()).to.equal(MAX_WITHDRAWAL_DELAY);
      expect(fx.roles.settlement).to.equal(ethers.id("SETTLEMENT_ROLE"));
      expect(await fx.escrow.totalBalance()).to.equal(0n);
    });

    it("gives DEFAULT_ADMIN_ROLE to the timelock only and SETTLEMENT_ROLE to the settlement", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      expect(await fx.escrow.hasRole(fx.roles.admin, await fx.gov.timelock.getAddress())).to.equal(true);
      expect(await fx.escrow.hasRole(fx.roles.admin, fx.deployer.address)).to.equal(false);
      expect(await fx.escrow.hasRole(fx.roles.settlement, fx.settlement.address)).to.equal(true);
    });

    it("emits WithdrawalDelaySet at construction", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      const escrow = await ethers.deployContract("PaymentEscrow", [
        await fx.token.getAddress(),
        fx.deployer.address,
        WITHDRAWAL_DELAY,
      ]);
      await expect(escrow.deploymentTransaction()).to.emit(escrow, "WithdrawalDelaySet").withArgs(WITHDRAWAL_DELAY);
    });

    it("reverts with ZeroAddress for a zero token or admin", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      const factory = await ethers.getContractFactory("PaymentEscrow");
      const token = await fx.token.getAddress();
      await expect(factory.deploy(ethers.ZeroAddress, fx.deployer.address, WITHDRAWAL_DELAY))
        .to.be.revertedWithCustomError(fx.escrow, "ZeroAddress")
        .withArgs("token");
      await expect(factory.deploy(token, ethers.ZeroAddress, WITHDRAWAL_DELAY))
        .to.be.revertedWithCustomError(fx.escrow, "ZeroAddress")
        .withArgs("admin");
    });

    it("reverts with InvalidParameter for a delay outside [MIN, MAX]", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      const factory = await ethers.getContractFactory("PaymentEscrow");
      const token = await fx.token.getAddress();
      for (const delay of [0n, MIN_WITHDRAWAL_DELAY - 1n, MAX_WITHDRAWAL_DELAY + 1n]) {
        await expect(factory.deploy(token, fx.deployer.address, delay))
          .to.be.revertedWithCustomError(fx.escrow, "InvalidParameter")
          .withArgs("withdrawalDelay", delay);
      }
    });
  });

  // ---------------------------------------------------------------- deposits

  describe("deposit", function () {
    it("credits the caller, pulls the tokens and emits Deposited with the new balance", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      const [alice] = fx.clients;
      const sent = fx.escrow.connect(alice).deposit(tokens(100));
      await expect(sent).to.emit(fx.escrow, "Deposited").withArgs(alice.address, tokens(100), tokens(100));
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.escrow], [-tokens(100), tokens(100)]);
      await expect(fx.escrow.connect(alice).deposit(tokens(50)))
        .to.emit(fx.escrow, "Deposited")
        .withArgs(alice.address, tokens(50), tokens(150));
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(150));
      expect(await fx.escrow.totalBalance()).to.equal(tokens(150));
      await expectConserved(fx);
    });

    it("reverts with ZeroAmount for 0 tokens", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      await expect(fx.escrow.connect(fx.clients[0]).deposit(0n)).to.be.revertedWithCustomError(fx.escrow, "ZeroAmount");
    });

    it("reverts (token error) without allowance, crediting nothing", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      await expect(fx.escrow.connect(fx.outsider).deposit(1n)).to.be.revertedWithCustomError(
        fx.token,
        "ERC20InsufficientAllowance",
      );
      expect(await fx.escrow.balanceOf(fx.outsider.address)).to.equal(0n);
    });
  });

  describe("depositWithPermit", function () {
    async function noAllowanceFixture(): Promise<EscrowFixture> {
      const fx = await deployEscrowFixture();
      await (await fx.token.connect(fx.clients[0]).approve(fx.escrowAddress, 0n)).wait();
      return fx;
    }

    it("deposits with a real EIP-2612 signature and no prior approval", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      const [alice] = fx.clients;
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(fx, alice, tokens(70), deadline);
      const sent = fx.escrow.connect(alice).depositWithPermit(tokens(70), deadline, v, r, s);
      await expect(sent).to.emit(fx.escrow, "Deposited").withArgs(alice.address, tokens(70), tokens(70));
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.escrow], [-tokens(70), tokens(70)]);
      await expectConserved(fx);
    });

    it("still deposits when a front-runner already spent the permit", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      const [alice] = fx.clients;
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(fx, alice, tokens(70), deadline);
      await (
        await fx.token.connect(fx.outsider).permit(alice.address, fx.escrowAddress, tokens(70), deadline, v, r, s)
      ).wait();
      await expect(fx.escrow.connect(alice).depositWithPermit(tokens(70), deadline, v, r, s))
        .to.emit(fx.escrow, "Deposited")
        .withArgs(alice.address, tokens(70), tokens(70));
    });

    it("reverts (token error) with a bad permit and no allowance", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      await expect(
        fx.escrow.connect(fx.clients[0]).depositWithPermit(tokens(1), 0n, 27, ethers.ZeroHash, ethers.ZeroHash),
      ).to.be.revertedWithCustomError(fx.token, "ERC20InsufficientAllowance");
    });

    it("reverts with ZeroAmount for 0 tokens", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      await expect(
        fx.escrow.connect(fx.clients[0]).depositWithPermit(0n, 0n, 27, ethers.ZeroHash, ethers.ZeroHash),
      ).to.be.revertedWithCustomError(fx.escrow, "ZeroAmount");
    });
  });

  // ---------------------------------------------------------------- withdrawals

  describe("requestWithdrawal", function () {
    it("records the amount and withdrawableAt = now + delay, leaving the balance in place", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice] = fx.clients;
      const sent = fx.escrow.connect(alice).requestWithdrawal(tokens(400));
      const at = (await timestampOf(sent)) + WITHDRAWAL_DELAY;
      await expect(sent).to.emit(fx.escrow, "WithdrawalRequested").withArgs(alice.address, tokens(400), at);
      const request = await fx.escrow.pendingWithdrawal(alice.address);
      expect(request.amount).to.equal(tokens(400));
      expect(request.withdrawableAt).to.equal(at);
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(1_000));
      await expectConserved(fx);
    });

    it("returns withdrawableAt", async function () {
      const fx = await loadFixture(fundedFixture);
      const now = BigInt(await time.latest());
      const at = await fx.escrow.connect(fx.clients[0]).requestWithdrawal.staticCall(tokens(1));
      expect(at >= now + WITHDRAWAL_DELAY && at <= now + WITHDRAWAL_DELAY + 1n).to.equal(true);
    });

    it("accepts the whole balance", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(fx.escrow.connect(fx.clients[0]).requestWithdrawal(tokens(1_000))).to.emit(
        fx.escrow,
        "WithdrawalRequested",
      );
    });

    it("a new request replaces the pending one and restarts its clock", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      await time.increase(DAY);
      const sent = fx.escrow.connect(alice).requestWithdrawal(tokens(100));
      const at = (await timestampOf(sent)) + WITHDRAWAL_DELAY;
      const request = await fx.escrow.pendingWithdrawal(alice.address);
      expect(request.amount).to.equal(tokens(100));
      expect(request.withdrawableAt).to.equal(at);
    });

    it("reverts with InsufficientBalance above the balance", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice] = fx.clients;
      await expect(fx.escrow.connect(alice).requestWithdrawal(tokens(1_000) + 1n))
        .to.be.revertedWithCustomError(fx.escrow, "InsufficientBalance")
        .withArgs(alice.address, tokens(1_000), tokens(1_000) + 1n);
    });

    it("reverts with ZeroAmount for 0 tokens", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(fx.escrow.connect(fx.clients[0]).requestWithdrawal(0n)).to.be.revertedWithCustomError(
        fx.escrow,
        "ZeroAmount",
      );
    });
  });

  describe("cancelWithdrawal", function () {
    it("deletes the pending request and emits WithdrawalCancelled", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      await expect(fx.escrow.connect(alice).cancelWithdrawal())
        .to.emit(fx.escrow, "WithdrawalCancelled")
        .withArgs(alice.address, tokens(400));
      const request = await fx.escrow.pendingWithdrawal(alice.address);
      expect(request.amount).to.equal(0n);
      expect(request.withdrawableAt).to.equal(0n);
      await time.increase(WITHDRAWAL_DELAY);
      await expect(fx.escrow.connect(alice).withdraw())
        .to.be.revertedWithCustomError(fx.escrow, "NoWithdrawalRequested")
        .withArgs(alice.address);
    });

    it("reverts with NoWithdrawalRequested when nothing is pending", async function () {
      const fx = await loadFixture(fundedFixture);
      const [, bob] = fx.clients;
      await expect(fx.escrow.connect(bob).cancelWithdrawal())
        .to.be.revertedWithCustomError(fx.escrow, "NoWithdrawalRequested")
        .withArgs(bob.address);
    });
  });

  describe("withdraw", function () {
    it("reverts with WithdrawalNotMatured one second before withdrawableAt", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      const { withdrawableAt } = await fx.escrow.pendingWithdrawal(alice.address);
      await time.setNextBlockTimestamp(withdrawableAt - 1n);
      await expect(fx.escrow.connect(alice).withdraw())
        .to.be.revertedWithCustomError(fx.escrow, "WithdrawalNotMatured")
        .withArgs(alice.address, withdrawableAt, withdrawableAt - 1n);
    });

    it("pays the request exactly at withdrawableAt and uses it up", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      const { withdrawableAt } = await fx.escrow.pendingWithdrawal(alice.address);
      await time.setNextBlockTimestamp(withdrawableAt);
      const sent = fx.escrow.connect(alice).withdraw();
      await expect(sent).to.emit(fx.escrow, "Withdrawn").withArgs(alice.address, tokens(400), tokens(600));
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.escrow], [tokens(400), -tokens(400)]);
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(600));
      expect((await fx.escrow.pendingWithdrawal(alice.address)).withdrawableAt).to.equal(0n);
      await expect(fx.escrow.connect(alice).withdraw()).to.be.revertedWithCustomError(
        fx.escrow,
        "NoWithdrawalRequested",
      );
      await expectConserved(fx);
    });

    it("returns the amount paid", async function () {
      const fx = await loadFixture(requestedFixture);
      await time.increase(WITHDRAWAL_DELAY);
      expect(await fx.escrow.connect(fx.clients[0]).withdraw.staticCall()).to.equal(tokens(400));
    });

    it("pays only what debits left when they ate into the requested amount", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      await (await fx.escrow.connect(fx.settlement).debit(alice.address, tokens(700))).wait();
      await time.increase(WITHDRAWAL_DELAY);
      const sent = fx.escrow.connect(alice).withdraw();
      await expect(sent).to.emit(fx.escrow, "Withdrawn").withArgs(alice.address, tokens(300), 0n);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.escrow], [tokens(300), -tokens(300)]);
      await expectConserved(fx);
    });

    it("pays nothing (and still uses the request up) when debits took the whole balance", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      await (await fx.escrow.connect(fx.settlement).debit(alice.address, tokens(1_000))).wait();
      await time.increase(WITHDRAWAL_DELAY);
      const sent = fx.escrow.connect(alice).withdraw();
      await expect(sent).to.emit(fx.escrow, "Withdrawn").withArgs(alice.address, 0n, 0n);
      await expect(sent).to.not.emit(fx.token, "Transfer");
      expect((await fx.escrow.pendingWithdrawal(alice.address)).withdrawableAt).to.equal(0n);
      await expectConserved(fx);
    });

    it("reverts with NoWithdrawalRequested without a request", async function () {
      const fx = await loadFixture(fundedFixture);
      const [, bob] = fx.clients;
      await expect(fx.escrow.connect(bob).withdraw())
        .to.be.revertedWithCustomError(fx.escrow, "NoWithdrawalRequested")
        .withArgs(bob.address);
    });

    it("keeps a request's withdrawableAt when governance changes the delay", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      const { withdrawableAt } = await fx.escrow.pendingWithdrawal(alice.address);
      await setDelay(fx, MAX_WITHDRAWAL_DELAY);
      expect((await fx.escrow.pendingWithdrawal(alice.address)).withdrawableAt).to.equal(withdrawableAt);
      await time.increaseTo(withdrawableAt);
      await expect(fx.escrow.connect(alice).withdraw()).to.emit(fx.escrow, "Withdrawn");
      // A request made now waits the new delay.
      const sent = fx.escrow.connect(alice).requestWithdrawal(tokens(1));
      const at = (await timestampOf(sent)) + MAX_WITHDRAWAL_DELAY;
      expect((await fx.escrow.pendingWithdrawal(alice.address)).withdrawableAt).to.equal(at);
    });
  });

  // ---------------------------------------------------------------- settlement

  describe("debit", function () {
    it("moves tokens to the settlement and emits Debited with the new balance", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice] = fx.clients;
      const sent = fx.escrow.connect(fx.settlement).debit(alice.address, tokens(250));
      await expect(sent)
        .to.emit(fx.escrow, "Debited")
        .withArgs(alice.address, fx.settlement.address, tokens(250), tokens(750));
      await expect(sent).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.escrow, fx.settlement],
        [-tokens(250), tokens(250)],
      );
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(750));
      expect(await fx.escrow.totalBalance()).to.equal(tokens(1_250));
      await expectConserved(fx);
    });

    it("can take a pending withdrawal's tokens before it matures", async function () {
      const fx = await loadFixture(requestedFixture);
      const [alice] = fx.clients;
      await expect(fx.escrow.connect(fx.settlement).debit(alice.address, tokens(1_000)))
        .to.emit(fx.escrow, "Debited")
        .withArgs(alice.address, fx.settlement.address, tokens(1_000), 0n);
      await expectConserved(fx);
    });

    it("reverts with InsufficientBalance above the balance", async function () {
      const fx = await loadFixture(fundedFixture);
      const [, bob] = fx.clients;
      await expect(fx.escrow.connect(fx.settlement).debit(bob.address, tokens(500) + 1n))
        .to.be.revertedWithCustomError(fx.escrow, "InsufficientBalance")
        .withArgs(bob.address, tokens(500), tokens(500) + 1n);
    });

    it("reverts with ZeroAmount for 0 tokens", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(fx.escrow.connect(fx.settlement).debit(fx.clients[0].address, 0n)).to.be.revertedWithCustomError(
        fx.escrow,
        "ZeroAmount",
      );
    });

    it("requires SETTLEMENT_ROLE", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice] = fx.clients;
      for (const caller of [fx.outsider, fx.deployer, alice]) {
        await expectMissingRole(
          fx.escrow.connect(caller).debit(alice.address, 1n),
          fx.escrow,
          caller,
          fx.roles.settlement,
        );
      }
    });
  });

  describe("debitBatch", function () {
    it("debits every client, emits one Debited each and makes one transfer of the total", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice, bob] = fx.clients;
      const clients = [alice.address, bob.address, alice.address];
      const amounts = [tokens(100), tokens(500), tokens(50)];
      expect(await fx.escrow.connect(fx.settlement).debitBatch.staticCall(clients, amounts)).to.equal(tokens(650));
      const sent = fx.escrow.connect(fx.settlement).debitBatch(clients, amounts);
      await expect(sent)
        .to.emit(fx.escrow, "Debited")
        .withArgs(alice.address, fx.settlement.address, tokens(100), tokens(900));
      await expect(sent).to.emit(fx.escrow, "Debited").withArgs(bob.address, fx.settlement.address, tokens(500), 0n);
      await expect(sent)
        .to.emit(fx.escrow, "Debited")
        .withArgs(alice.address, fx.settlement.address, tokens(50), tokens(850));
      await expect(sent).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.escrow, fx.settlement],
        [-tokens(650), tokens(650)],
      );
      const receipt = await (await sent).wait();
      const transfers = receipt?.logs.filter((log) => log.address === fx.token.target) ?? [];
      expect(transfers.length).to.equal(1);
      await expectConserved(fx);
    });

    it("an empty batch moves nothing", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(fx.escrow.connect(fx.settlement).debitBatch([], [])).to.not.emit(fx.token, "Transfer");
      await expectConserved(fx);
    });

    it("reverts as a whole with InsufficientBalance when one client is short", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice, bob] = fx.clients;
      await expect(
        fx.escrow
          .connect(fx.settlement)
          .debitBatch([alice.address, bob.address, bob.address], [tokens(1), tokens(300), tokens(201)]),
      )
        .to.be.revertedWithCustomError(fx.escrow, "InsufficientBalance")
        .withArgs(bob.address, tokens(200), tokens(201));
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(1_000));
      expect(await fx.escrow.balanceOf(bob.address)).to.equal(tokens(500));
    });

    it("reverts with LengthMismatch when the arrays differ in length", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(fx.escrow.connect(fx.settlement).debitBatch([fx.clients[0].address], []))
        .to.be.revertedWithCustomError(fx.escrow, "LengthMismatch")
        .withArgs(1, 0);
    });

    it("reverts with ZeroAmount when any amount is 0", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(
        fx.escrow.connect(fx.settlement).debitBatch([fx.clients[0].address, fx.clients[1].address], [1n, 0n]),
      ).to.be.revertedWithCustomError(fx.escrow, "ZeroAmount");
    });

    it("requires SETTLEMENT_ROLE", async function () {
      const fx = await loadFixture(fundedFixture);
      for (const caller of [fx.outsider, fx.deployer, fx.clients[0]]) {
        await expectMissingRole(fx.escrow.connect(caller).debitBatch([], []), fx.escrow, caller, fx.roles.settlement);
      }
    });
  });

  describe("debitPacked", function () {
    const pack = (client: string, amount: bigint) => client.toLowerCase() + amount.toString(16).padStart(24, "0");

    it("debits every client of the packed words, emits one DebitedPacked and makes one transfer", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice, bob] = fx.clients;
      const debits = [
        pack(alice.address, tokens(100)),
        pack(bob.address, tokens(500)),
        pack(alice.address, tokens(50)),
      ];
      expect(await fx.escrow.connect(fx.settlement).debitPacked.staticCall(debits)).to.equal(tokens(650));
      const sent = fx.escrow.connect(fx.settlement).debitPacked(debits);
      await expect(sent).to.emit(fx.escrow, "DebitedPacked").withArgs(fx.settlement.address, debits, tokens(650));
      await expect(sent).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.escrow, fx.settlement],
        [-tokens(650), tokens(650)],
      );
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(850));
      expect(await fx.escrow.balanceOf(bob.address)).to.equal(0n);
      await expectConserved(fx);
    });

    it("an empty batch moves nothing", async function () {
      const fx = await loadFixture(fundedFixture);
      await expect(fx.escrow.connect(fx.settlement).debitPacked([])).to.not.emit(fx.token, "Transfer");
      await expectConserved(fx);
    });

    it("reverts as a whole with InsufficientBalance or ZeroAmount; nothing moves", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice, bob] = fx.clients;
      await expect(
        fx.escrow
          .connect(fx.settlement)
          .debitPacked([
            pack(alice.address, tokens(1)),
            pack(bob.address, tokens(300)),
            pack(bob.address, tokens(201)),
          ]),
      )
        .to.be.revertedWithCustomError(fx.escrow, "InsufficientBalance")
        .withArgs(bob.address, tokens(200), tokens(201));
      await expect(
        fx.escrow.connect(fx.settlement).debitPacked([pack(alice.address, 1n), pack(bob.address, 0n)]),
      ).to.be.revertedWithCustomError(fx.escrow, "ZeroAmount");
      expect(await fx.escrow.balanceOf(alice.address)).to.equal(tokens(1_000));
      expect(await fx.escrow.balanceOf(bob.address)).to.equal(tokens(500));
    });

    it("requires SETTLEMENT_ROLE", async function () {
      const fx = await loadFixture(fundedFixture);
      for (const caller of [fx.outsider, fx.deployer, fx.clients[0]]) {
        await expectMissingRole(fx.escrow.connect(caller).debitPacked([]), fx.escrow, caller, fx.roles.settlement);
      }
    });
  });

  // ---------------------------------------------------------------- governance

  describe("setWithdrawalDelay", function () {
    it("sets the delay through the timelock and emits WithdrawalDelaySet", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      await expect(setDelay(fx, 10n * DAY))
        .to.emit(fx.escrow, "WithdrawalDelaySet")
        .withArgs(10n * DAY);
      expect(await fx.escrow.withdrawalDelay()).to.equal(10n * DAY);
    });

    it("accepts exactly MIN and MAX", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      await setDelay(fx, MIN_WITHDRAWAL_DELAY);
      expect(await fx.escrow.withdrawalDelay()).to.equal(MIN_WITHDRAWAL_DELAY);
      await setDelay(fx, MAX_WITHDRAWAL_DELAY);
      expect(await fx.escrow.withdrawalDelay()).to.equal(MAX_WITHDRAWAL_DELAY);
    });

    it("reverts with InvalidParameter outside [MIN, MAX]", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      for (const delay of [MIN_WITHDRAWAL_DELAY - 1n, MAX_WITHDRAWAL_DELAY + 1n]) {
        await expect(setDelay(fx, delay))
          .to.be.revertedWithCustomError(fx.escrow, "InvalidParameter")
          .withArgs("withdrawalDelay", delay);
      }
    });

    it("requires DEFAULT_ADMIN_ROLE (the timelock)", async function () {
      const fx = await loadFixture(deployEscrowFixture);
      for (const caller of [fx.outsider, fx.deployer, fx.settlement, fx.clients[0]]) {
        await expectMissingRole(
          fx.escrow.connect(caller).setWithdrawalDelay(MIN_WITHDRAWAL_DELAY),
          fx.escrow,
          caller,
          fx.roles.admin,
        );
      }
    });
  });

  // ---------------------------------------------------------------- conservation

  describe("conservation", function () {
    it("the token balance equals the sum of client balances through a mixed history", async function () {
      const fx = await loadFixture(fundedFixture);
      const [alice, bob, carol] = fx.clients;
      await (await fx.escrow.connect(carol).deposit(tokens(42))).wait();
      await expectConserved(fx);
      await (await fx.escrow.connect(bob).requestWithdrawal(tokens(200))).wait();
      await (await fx.escrow.connect(fx.settlement).debitBatch([alice.address, bob.address], [7n, 9n])).wait();
      await expectConserved(fx);
      await time.increase(WITHDRAWAL_DELAY);
      await (await fx.escrow.connect(bob).withdraw()).wait();
      await (await fx.escrow.connect(fx.settlement).debit(carol.address, tokens(42))).wait();
      await expectConserved(fx);
      expect(await fx.escrow.totalBalance()).to.equal(tokens(1_000) - 7n + tokens(300) - 9n);
    });
  });
});
