import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import hardhatViem from "@nomicfoundation/hardhat-viem";
import { configVariable, defineConfig, task } from "hardhat/config";

// The compiler download is unreachable on this project's machines (HHE905), so Hardhat
// runs the WASM build that ships inside the npm `solc` package, pinned in package.json.
const require = createRequire(import.meta.url);
const solcVersion: string = require("solc/package.json").version;
const solcPath = require.resolve("solc/soljson.js");

const deploy = task("deploy", "Deploy the Inframesh contracts and write deployments/<network>.json")
  .addOption({
    name: "parameters",
    description: "Path to an Ignition parameters JSON file (overrides the network's defaults)",
    defaultValue: "",
  })
  .setAction(() => import("./scripts/deploy/task.ts"))
  .build();

const compiler = {
  version: solcVersion,
  path: solcPath,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 10_000 },
  },
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers, hardhatViem],
  tasks: [deploy],
  solidity: {
    // One compiler setting for tests, benchmarks and deployments, so the bytecode deployed is the
    // bytecode tested and measured (Ignition deploys with the production profile).
    profiles: { default: compiler, production: compiler },
  },
  paths: {
    tests: { mocha: "test", solidity: "test/contracts" },
  },
  networks: {
    // `npx hardhat node --hostname 127.0.0.1` on its default port; INFRAMESH_RPC_URL points
    // it elsewhere (the demo and the deploy tests run their own node on a free port).
    localhost: {
      type: "http",
      chainType: "l1",
      url: process.env.INFRAMESH_RPC_URL ?? "http://127.0.0.1:8545",
    },
    sepolia: {
      type: "http",
      chainType: "l1",
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("SEPOLIA_PRIVATE_KEY")],
    },
  },
});
