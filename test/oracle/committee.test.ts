// Committee mode with 3 oracles and k = 2 on a real chain: each oracle has its own PGlite and
// queue; the leader (lowest address) builds the epoch, publishes the receipt batch to the blob
// store and gathers signatures; followers re-verify every receipt against the chain and sign only
// an identical settlement. It posts with one follower disagreeing (it rejects a receipt) or down,
// and not with two down.
//
// Slow: run alone with `npx hardhat test mocha test/oracle/committee.test.ts`.
import { expect } from "chai";
import { type Address, type Hex, getAddress } from "viem";

import { freePort } from "../../scripts/lib/local-chain.ts";
import { electLeader } from "../../oracle/committee.ts";
import type { OracleConfigInput } from "../../oracle/config.ts";
import { type RunningOracle, startOracle } from "../../oracle/service.ts";
import { ROLES, type World, devAccount, devKey, makeReceipt, startWorld } from "./world.ts";

const ADMIN = { authorization: "Bearer test-admin-token-0123456789" };

describe("oracle committee (3 oracles, k = 2)", function () {
  this.timeout(300_000);
  let world: World;
  const members = [...ROLES.committee]
    .map((i) => ({ index: i, address: getAddress(devAccount(i).address) as Address, key: devKey(i) }))
    .sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
  const [leaderM, followerA, followerB] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]];
  const ports = new Map<Address, number>();
  const running = new Map<Address, RunningOracle>();
  const dataDirs = new Map<Address, string>();

  const committee = () => ({
    members: members.map((m) => ({ address: m.address, url: `http://127.0.0.1:${ports.get(m.address)}` })),
    threshold: 2,
  });

  async function start(m: (typeof members)[0], overrides: Partial<OracleConfigInput> = {}) {
    const config = world.oracleConfig(
      {
        port: ports.get(m.address)!,
        committee: committee(),
        ...(dataDirs.has(m.address) ? { dataDir: dataDirs.get(m.address)! } : {}),
        ...overrides,
      },
      m.key,
    );
    dataDirs.set(m.address, config.dataDir);
    running.set(m.address, await startOracle(config));
  }
  async function stop(m: (typeof members)[0]) {
    await running.get(m.address)?.close();
    running.delete(m.address);
  }

  const leader = () => running.get(leaderM.address)!;
  const close = async () => {
    const res = await fetch(`${leader().url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  async function submitVerified(count: number) {
    for (let i = 0; i < count; i++) {
      const r = await makeReceipt(world.domain, world, { client: ROLES.clients[i % 2]!, node: ROLES.nodes[i % 2]! });
      const res = await fetch(`${leader().url}/v1/receipts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(r),
      });
      expect(res.status).to.equal(202);
      for (;;) {
        const s = await leader().store.getReceipt(r.work_unit.job_id);
        if (s?.status === "verified") break;
        expect(s?.status).to.equal("queued");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
  const chainNextEpoch = () => leader().chain.settlementNextEpoch();

  before(async function () {
    world = await startWorld({ committee: members.map((m) => m.address), threshold: 2 });
    for (const m of members) ports.set(m.address, await freePort());
    await start(leaderM);
    await start(followerA);
    // Follower B disagrees: it requires tier 5, so it rejects every receipt of these tier-1 nodes.
    await start(followerB, { minTier: 5 });
  });

  after(async function () {
    for (const m of members) await stop(m);
    await world?.stop();
  });

  it("elects the lowest live address, skipping members that do not answer", async function () {
    expect(await electLeader(committee(), followerB.address)).to.equal(leaderM.address);
    const deadLeader = {
      ...committee(),
      members: committee().members.map((m) =>
        m.address === leaderM.address ? { ...m, url: "http://127.0.0.1:9" } : m,
      ),
    };
    expect(await electLeader(deadLeader, followerB.address, 500)).to.equal(followerA.address);
    const follower = await fetch(`${running.get(followerA.address)!.url}/v1/epochs/close`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(follower.status).to.equal(409);
    expect(await follower.json()).to.include({ error: "not_leader" });
  });

  it("posts with one follower disagreeing (it rejects a receipt): 2 of 3 signatures", async function () {
    await submitVerified(3);
    const res = await close();
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body).to.include({ epoch: "0", state: "posted", signatures: 2 });
    await world.increaseTime(3_601);
    expect((await close()).body).to.include({ epoch: "0", state: "funded" });
    expect(await chainNextEpoch()).to.equal(1n);
    // The agreeing follower recorded the epoch it signed; the disagreeing one did not.
    expect(await running.get(followerA.address)!.store.getEpoch(0n)).to.not.equal(undefined);
    expect(await running.get(followerB.address)!.store.getEpoch(0n)).to.equal(undefined);
  });

  it("posts with one follower down", async function () {
    await stop(followerB);
    await submitVerified(2);
    const res = await close();
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body).to.include({ epoch: "1", state: "posted", signatures: 2 });
    await world.increaseTime(3_601);
    expect((await close()).body).to.include({ epoch: "1", state: "funded" });
  });

  it("does not post with two followers down, and posts once one is back", async function () {
    await stop(followerA);
    await submitVerified(1);
    const res = await close();
    expect(res.status).to.equal(409);
    expect(res.body.error).to.equal("committee_short");
    expect(res.body.reason).to.match(/1 of 2 signatures/);
    expect(await chainNextEpoch()).to.equal(2n);
    expect((await leader().store.getEpoch(2n))?.state).to.equal("building");

    await start(followerA);
    const retry = await close();
    expect(retry.status, JSON.stringify(retry.body)).to.equal(200);
    expect(retry.body).to.include({ epoch: "2", state: "posted", signatures: 2 });
    const epoch = (await leader().store.getEpoch(2n))!;
    // Signatures are sorted by signer ascending, as EpochSettlement requires.
    const posted = await leader().chain.settlementOf(2n);
    expect(posted.status).to.equal("posted");
    expect(epoch.signatures).to.have.length(2);
    expect((epoch.signatures as Hex[]).every((s) => /^0x[0-9a-f]{130}$/.test(s))).to.equal(true);
  });
});
