import { expect } from "chai";

import { INITIAL_SUPPLY, type Signer, ethers, loadFixture, time, tokens } from "./fixtures.ts";

type Token = Awaited<ReturnType<typeof tokenFixture>>["token"];

async function tokenFixture() {
  const [holder, owner, spender, relayer] = await ethers.getSigners();
  if (!holder || !owner || !spender || !relayer) throw new Error("signers");
  const token = await ethers.deployContract("InframeshToken", [holder.address, INITIAL_SUPPLY]);
  await (await token.transfer(owner.address, tokens(1_000))).wait();
  return { token, holder, owner, spender, relayer };
}

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

async function domainOf(token: Token) {
  const { chainId } = await ethers.provider.getNetwork();
  return {
    name: "Inframesh",
    version: "1",
    chainId,
    verifyingContract: await token.getAddress(),
  };
}

async function signPermit(
  token: Token,
  signer: Signer,
  owner: string,
  spender: string,
  value: bigint,
  deadline: bigint,
  nonce?: bigint,
) {
  const signature = await signer.signTypedData(await domainOf(token), PERMIT_TYPES, {
    owner,
    spender,
    value,
    nonce: nonce ?? (await token.nonces(owner)),
    deadline,
  });
  return ethers.Signature.from(signature);
}

describe("InframeshToken", function () {
  describe("supply", function () {
    it("has the Inframesh name, INFRA symbol and 18 decimals", async function () {
      const { token } = await loadFixture(tokenFixture);
      expect(await token.name()).to.equal("Inframesh");
      expect(await token.symbol()).to.equal("INFRA");
      expect(await token.decimals()).to.equal(18n);
    });

    it("mints the whole supply to the holder once, with a Transfer from zero", async function () {
      const [holder] = await ethers.getSigners();
      const token = await ethers.deployContract("InframeshToken", [holder!.address, INITIAL_SUPPLY]);
      await expect(token.deploymentTransaction())
        .to.emit(token, "Transfer")
        .withArgs(ethers.ZeroAddress, holder!.address, INITIAL_SUPPLY);
      expect(await token.totalSupply()).to.equal(INITIAL_SUPPLY);
      expect(await token.balanceOf(holder!.address)).to.equal(INITIAL_SUPPLY);
    });

    it("has no mint or burn entry point: transfers never change the supply", async function () {
      const { token, holder, owner } = await loadFixture(tokenFixture);
      const names: string[] = [];
      token.interface.forEachFunction((f) => names.push(f.name));
      expect(names).to.include.members(["transfer", "permit"]);
      expect(names).to.not.include("mint");
      expect(names).to.not.include("burn");
      await expect(token.connect(owner).transfer(holder.address, tokens(1))).to.changeTokenBalances(
        ethers,
        token,
        [owner, holder],
        [-tokens(1), tokens(1)],
      );
      expect(await token.totalSupply()).to.equal(INITIAL_SUPPLY);
    });

    it("reverts with ERC20InvalidReceiver for a zero holder", async function () {
      const factory = await ethers.getContractFactory("InframeshToken");
      await expect(factory.deploy(ethers.ZeroAddress, 1n))
        .to.be.revertedWithCustomError(factory, "ERC20InvalidReceiver")
        .withArgs(ethers.ZeroAddress);
    });

    it("reverts with ERC20InsufficientBalance beyond the balance", async function () {
      const { token, owner, spender } = await loadFixture(tokenFixture);
      await expect(token.connect(owner).transfer(spender.address, tokens(1_000) + 1n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientBalance")
        .withArgs(owner.address, tokens(1_000), tokens(1_000) + 1n);
    });
  });

  describe("permit (EIP-2612)", function () {
    it("exposes the EIP-712 domain used for signatures", async function () {
      const { token } = await loadFixture(tokenFixture);
      const domain = await domainOf(token);
      expect(await token.DOMAIN_SEPARATOR()).to.equal(ethers.TypedDataEncoder.hashDomain(domain));
      const eip712 = await token.eip712Domain();
      expect(eip712.name).to.equal("Inframesh");
      expect(eip712.version).to.equal("1");
      expect(eip712.chainId).to.equal(domain.chainId);
      expect(eip712.verifyingContract).to.equal(domain.verifyingContract);
    });

    it("sets the allowance from a signature relayed by anyone and bumps the nonce", async function () {
      const { token, owner, spender, relayer } = await loadFixture(tokenFixture);
      const value = tokens(123);
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(token, owner, owner.address, spender.address, value, deadline);
      await expect(token.connect(relayer).permit(owner.address, spender.address, value, deadline, v, r, s))
        .to.emit(token, "Approval")
        .withArgs(owner.address, spender.address, value);
      expect(await token.allowance(owner.address, spender.address)).to.equal(value);
      expect(await token.nonces(owner.address)).to.equal(1n);
      await expect(token.connect(spender).transferFrom(owner.address, spender.address, value)).to.changeTokenBalances(
        ethers,
        token,
        [owner, spender],
        [-value, value],
      );
    });

    it("accepts a signature up to and including its deadline", async function () {
      const { token, owner, spender } = await loadFixture(tokenFixture);
      const deadline = BigInt(await time.latest()) + 100n;
      const { v, r, s } = await signPermit(token, owner, owner.address, spender.address, 1n, deadline);
      await time.setNextBlockTimestamp(deadline);
      await expect(token.permit(owner.address, spender.address, 1n, deadline, v, r, s)).to.emit(token, "Approval");
    });

    it("reverts with ERC2612ExpiredSignature after the deadline", async function () {
      const { token, owner, spender } = await loadFixture(tokenFixture);
      const deadline = BigInt(await time.latest()) + 100n;
      const { v, r, s } = await signPermit(token, owner, owner.address, spender.address, 1n, deadline);
      await time.increaseTo(deadline + 1n);
      await expect(token.permit(owner.address, spender.address, 1n, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612ExpiredSignature")
        .withArgs(deadline);
    });

    it("reverts with ERC2612InvalidSigner for another signer, a changed value or a replay", async function () {
      const { token, owner, spender, relayer } = await loadFixture(tokenFixture);
      const deadline = BigInt(await time.latest()) + 3600n;

      const forged = await signPermit(token, relayer, owner.address, spender.address, 1n, deadline);
      await expect(token.permit(owner.address, spender.address, 1n, deadline, forged.v, forged.r, forged.s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(relayer.address, owner.address);

      const good = await signPermit(token, owner, owner.address, spender.address, 1n, deadline);
      // Any change to the signed message recovers some other address.
      await expect(
        token.permit(owner.address, spender.address, 2n, deadline, good.v, good.r, good.s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");

      await (await token.permit(owner.address, spender.address, 1n, deadline, good.v, good.r, good.s)).wait();
      // Replay: the nonce moved on.
      await expect(
        token.permit(owner.address, spender.address, 1n, deadline, good.v, good.r, good.s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");
    });

    it("rejects a signature made for a future nonce", async function () {
      const { token, owner, spender } = await loadFixture(tokenFixture);
      const deadline = BigInt(await time.latest()) + 3600n;
      const early = await signPermit(token, owner, owner.address, spender.address, 1n, deadline, 1n);
      await expect(
        token.permit(owner.address, spender.address, 1n, deadline, early.v, early.r, early.s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");
      expect(await token.nonces(owner.address)).to.equal(0n);
    });
  });
});
