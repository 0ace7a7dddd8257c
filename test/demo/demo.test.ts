// `npm run demo` end to end, as a user runs it: exit 0, the tables printed, no chain left running.
//
// Slow (starts a chain and deploys): run alone with `npx hardhat test mocha test/demo/demo.test.ts`.
import { expect } from "chai";

import { rpc, spawnGroup } from "../../scripts/lib/local-chain.ts";

describe("npm run demo", function () {
  this.timeout(300_000);

  let code: number | null;
  let output: string;

  before(async function () {
    const env: NodeJS.ProcessEnv = { ...process.env, HARDHAT_BUILD_PROFILE: "default" };
    delete env.HH_TEST; // set by `hardhat test`; the demo is a plain CLI run
    const demo = spawnGroup("npm", ["run", "--silent", "demo"], { env });
    const timer = setTimeout(() => void demo.stop(), 240_000);
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
});
