// `npm run demo` end to end, as a user runs it: exit 0, the tables printed, no chain left running.
//
// Slow (starts a chain and deploys): run alone with `npx hardhat test mocha test/demo/demo.test.ts`.
import { expect } from "chai";

import { hasDockerd } from "../../scripts/lib/docker.ts";
import { rpc, spawnGroup } from "../../scripts/lib/local-chain.ts";

describe("npm run demo", function () {
  this.timeout(600_000);

  let code: number | null;
  let output: string;

  before(async function () {
    const env: NodeJS.ProcessEnv = { ...process.env, HARDHAT_BUILD_PROFILE: "default" };
    delete env.HH_TEST; // set by `hardhat test`; the demo is a plain CLI run
    const demo = spawnGroup("npm", ["run", "--silent", "demo"], { env });
    const timer = setTimeout(() => void demo.stop(), 480_000);
    ({ code } = await demo.exited);
    clearTimeout(timer);
    output = demo.output();
  });

  it("exits 0", function () {
    expect(code, output).to.equal(0);
    expect(output).to.include("Demo finished.");
  });

  it("prints the nodes, the stakers and the events as tables", function () {
    expect(output).to.match(
      /Nodes \(INFRA\)\n=+\nnode +endpoint +commission +self-stake +delegated +active +unbonding +tier/,
    );
    expect(output).to.match(/^node-a .* 0 +no +jailed/m);
    expect(output).to.match(/^node-b .* 3 +yes +active/m);
    expect(output).to.match(/Stakers \(INFRA\)\n=+\nstaker +node +active stake +unbonding locks +wallet/);
    expect(output).to.match(/^delegator-1 +node-a .*#0 /m);
    expect(output).to.match(/Events of NodeStaking since its deploy block \d+/);
    for (const event of ["RoleRevoked", "NodeRegistered", "Staked", "Unbonded", "Slashed", "SlashedStakeReleased"]) {
      expect(output).to.match(new RegExp(`^ +\\d+ +\\d+ +${event} `, "m"));
    }
    expect(output).to.match(/evidence sha256 0x[0-9a-f]{64}/);
    expect(output).to.match(/Tokens conserved: NodeStaking holds ([\d,.]+) INFRA = active \+ unbonding pools \1 INFRA/);
  });

  it("publishes a 10+4 model and loads it in a fresh cache with 4 shards lost", function () {
    expect(output).to.include("stand in for the weights until the simplenet ONNX model exists");
    expect(output).to.match(/14 shards of [\d.]+ MiB \(10\+4, codec rs\), root [0-9a-f]{64}/);
    expect(output).to.match(/registerModel\("simplenet"\) → model id 1 /);
    expect(output).to.match(/publishVersion\("0\.1\.0"\) → version 0 /);
    expect(output).to.match(/setMatureModel\(1, [0-9a-f]{12}…, 25\)/);
    const weights = /weights sha256 ([0-9a-f]{64})/.exec(output)?.[1];
    expect(weights, "the demo prints the weights' sha256").to.be.a("string");
    expect(output).to.include(`sha256 ${weights} (matches)`);
    expect(output).to.match(
      /model id +name +version +manifest hash +shard root +shards +bytes +price +load time\n[- ]+\n +1 +simplenet +0\.1\.0 \(#0\) +[0-9a-f]{16}… +[0-9a-f]{16}… +14 \(4 lost\) +4,194,304 +25 +\d+ ms/,
    );
    expect(output).to.include("Weights verified: rebuilt from 10 of 14 shards.");
  });

  it("settles an epoch from hand-signed receipts and every account claims", function () {
    expect(output).to.match(/client deposits 100 INFRA/);
    expect(output.match(/^ {2}job \d: node-[bc] served 0x[0-9a-f]{8}… in \d+ ms$/gm)).to.have.length(6);
    expect(output).to.include("6 receipts: client and node signatures recovered, work-unit hashes match");
    expect(output).to.include("protocol fee 500 bps to timelock, royalty 1000 bps to the publisher");
    // 6 jobs at the model's price of 25 base units: 150 debited, 6 x floor(1.25) = 6 fees, 6 x floor(2.5) = 12 royalties;
    // node-a's slash (6,000, half burned) is redistributed to the two nodes that served.
    expect(output).to.match(
      /epoch 0: debits 0\.00000000000000015, fees 0\.000000000000000006, royalties 0\.000000000000000012, redistributed slash 3000 INFRA/,
    );
    expect(output).to.match(/post \(gas \d+\), \+86400 s, finalise \(gas \d+\)/);
    expect(output).to.match(
      /Epoch 0 settlement: 6 receipts, claims \(INFRA\)\n=+\naccount +earned +sent +commission accrued +to stakers +claim gas/,
    );
    // node-b: 3 x 22 + 1,500 slash; 10% commission accrued to its operator, the rest to its pool,
    // nothing sent; the publisher and the treasury (the timelock) are sent theirs.
    expect(output).to.match(
      /^node-b +1500\.000000000000000066 +0 +150\.000000000000000006 +1350\.00000000000000006 +\d+$/m,
    );
    expect(output).to.match(
      /^node-c +1500\.000000000000000066 +0 +225\.000000000000000009 +1275\.000000000000000057 +\d+$/m,
    );
    expect(output).to.match(/^publisher +0\.000000000000000012 +0\.000000000000000012 +0 +0 +\d+$/m);
    expect(output).to.match(/^timelock +0\.000000000000000006 +0\.000000000000000006 +0 +0 +\d+$/m);
    // Then the operators take their commission out of staking.
    expect(output).to.match(/^ {2}node-b: 150\.000000000000000006 INFRA \(gas \d+\)$/m);
    expect(output).to.match(/^ {2}node-c: 225\.000000000000000009 INFRA \(gas \d+\)$/m);
    expect(output).to.match(
      /Settlement balanced: debits 0\.00000000000000015 \+ redistributed slash 3000 = credits 3000\.00000000000000015 INFRA, all claimed/,
    );
  });

  it("leaves no blob-store peer running", async function () {
    const peers = [...output.matchAll(/peer-\d (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
    expect(peers).to.have.length(3);
    for (const peer of peers) {
      const answered = await fetch(`${peer}/blob/${"0".repeat(64)}`).then(
        () => true,
        () => false,
      );
      expect(answered, `${peer} still answers`).to.equal(false);
    }
  });

  it("leaves no chain running", async function () {
    const url = /(http:\/\/127\.0\.0\.1:\d+) \(chain 31337\)/.exec(output)?.[1];
    expect(url, "the demo prints its RPC URL").to.be.a("string");
    let answered = true;
    try {
      await rpc(url!, "eth_chainId");
    } catch {
      answered = false;
    }
    expect(answered, `${url} still answers`).to.equal(false);
  });

  it("serves 100 calls through the gateway and real node agents with one killed, settles them through the oracle", function () {
    expect(output).to.match(/call 50: node-c killed \(SIGKILL to its process group\)/);
    // node-b serves from a container wherever a Docker engine can be started.
    const nodeBRuntime = hasDockerd() || process.env.DOCKER_HOST?.startsWith("unix://") ? "docker" : "process";
    expect(output).to.match(new RegExp(`node-b 0x[0-9a-fA-F]{40} at http://\\S+ \\(${nodeBRuntime} runtime\\)`));
    expect(output).to.match(/100 of 100 answered: node-a \d+, node-b \d+, node-c \d+/);
    expect(output).to.include('oracle: {"queued":0,"verified":100,"rejected":0');
    expect(output).to.match(
      /epoch 0: 100 receipts, debits 100000 wei, protocol fees 5000, royalties 10000, batch sha256 0x[0-9a-f]{64}/,
    );
    for (const node of ["node-a", "node-b", "node-c"])
      expect(output).to.match(new RegExp(`^${node} +\\d+ +\\d+ +\\d+ +[\\d,]+$`, "m"));
    expect(output).to.match(/delegator's stake on node-a: 1000 → 1000\.0+\d+ INFRA/);
    // Epochs and the SLA slash are the keeper's: no hand-made close or slash.
    expect(output).to.match(/epoch 0 closed by the keeper and posted by the oracle/);
    // Which failures the gateway saw depends on where each call was when node-c died. The slash is
    // 10% of node-c's slashable stake when the keeper acts: 100 INFRA, plus a few wei when node-c's
    // claim has already compounded its earnings into its pool (the two race).
    const slashLine = output.match(/^.*the keeper slashed node-c.*$/m)?.[0] ?? "(no slash line)";
    expect(slashLine).to.match(
      /the keeper slashed node-c 100(\.0+\d+)? INFRA for evidence sha256 0x[0-9a-f]{64} \(published to the blob store: \d+ unanswered call\(s\) in one incident: (dropped|unreachable|timeout|no_answer|heartbeat_lost)(, (dropped|unreachable|timeout|no_answer|heartbeat_lost))*\)/,
    );
    expect(output).to.include("Network summary: 100 calls, 100 answered");
  });

  it("ends each network with `infra audit --all` passing", function () {
    const audits = output.match(/^> Auditor: infra --network localhost audit --all --blob-peer \S+ --oracle \S+$/gm);
    expect(audits, output).to.have.lengthOf(2);
    expect(output.match(/^ {2}audit passed: everything matches the chain at block \d+/gm)).to.have.lengthOf(2);
    expect(output).to.match(/1 slash; audit passed: everything matches the chain at block \d+/);
  });

  it("proves zk-required calls, refuses a bad proof, and settles a challenge each way", function () {
    expect(output).to.match(/zkML summary: 3 proven calls verified and paid \(epoch \d+, [1-9]\d* wei claimed\)/);
    expect(output).to.match(/node-cheat: rejected, zk_proof_invalid: wrong_input: /);
    expect(output).to.match(/challenge answered, no slash/);
    expect(output).to.match(/executeSlash took [1-9][\d.]* INFRA/);
  });
});
