// The `infra node …` command group, kept out of infra.ts so the shared entry file only gains a line.
import type { Command } from "commander";

import { addClaimCommand } from "./client-commands.ts";
import { parsePort } from "./format.ts";
import { formatStatus, initAction, parseCommissionBps, registerAction, startAction, statusAction } from "./node.ts";

interface GlobalOptions {
  network: string;
  json: boolean;
}
type Print = (options: GlobalOptions, json: unknown, text: string) => void;

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function addNodeCommands(program: Command, globals: (command: Command) => GlobalOptions, print: Print): void {
  const node = program
    .command("node")
    .description("run a node: init a config and encrypted key, register on chain, start the agent, show status");

  node
    .command("init")
    .description("write <dir>/node-agent.yaml and a new operator key encrypted with INFRAMESH_KEYSTORE_PASSWORD")
    .requiredOption("--dir <dir>", "directory for the config, key and data")
    .requiredOption("--oracle <url>", "reward oracle base URL (repeat for several)", collect)
    .requiredOption("--model <model>", "model name or id to serve (repeat for several)", collect)
    .option("--bundle <dir>", "local bundle directory for the --model at the same position (development)", collect)
    .option("--blob-peer <url>", "blob-store peer to load models from (repeat for several)", collect)
    .option("--rpc-url <url>", "chain RPC URL", "http://127.0.0.1:8545")
    .option("--deployment <file>", "deployment record file (default: deployments/<--network>.json)")
    .option("--host <address>", "interface the agent listens on", "127.0.0.1")
    .option("--port <port>", "port the agent listens on", parsePort, 8700)
    .option("--endpoint <url>", "public URL registered on chain (default http://<host>:<port>)")
    .action(
      async (
        opts: {
          dir: string;
          oracle: string[];
          model: string[];
          bundle?: string[];
          blobPeer?: string[];
          rpcUrl: string;
          deployment?: string;
          host: string;
          port: number;
          endpoint?: string;
        },
        command: Command,
      ) => {
        const options = globals(command);
        const result = await initAction(
          {
            dir: opts.dir,
            rpcUrl: opts.rpcUrl,
            network: options.network,
            ...(opts.deployment === undefined ? {} : { deployment: opts.deployment }),
            oracles: opts.oracle,
            models: opts.model,
            bundles: opts.bundle ?? [],
            blobPeers: opts.blobPeer ?? [],
            host: opts.host,
            port: opts.port,
            ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
          },
          process.env,
        );
        print(
          options,
          result,
          [
            `node ${result.nodeId}`,
            `  config   ${result.config}`,
            `  keystore ${result.keystore} (encrypted; keep INFRAMESH_KEYSTORE_PASSWORD safe)`,
            `  next: fund ${result.nodeId} with gas, then infra node register --config ${result.config}`,
          ].join("\n"),
        );
      },
    );

  node
    .command("register")
    .description("registerNode(endpoint, hardwareSpecHash, commissionBps) with the config's operator key")
    .option("--config <file>", "node agent config", "node-agent.yaml")
    .option("--commission-bps <bps>", "commission on delegators' rewards, basis points", parseCommissionBps, 500)
    .option("--endpoint <url>", "public URL (default: the config's endpoint or listen address)")
    .action(async (opts: { config: string; commissionBps: number; endpoint?: string }, command: Command) => {
      const options = globals(command);
      const result = await registerAction(
        opts.config,
        { commissionBps: opts.commissionBps, ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }) },
        process.env,
      );
      print(
        options,
        result,
        [
          `registered node ${result.nodeId} at ${result.endpoint}, commission ${result.commissionBps} bps`,
          `  hardware ${JSON.stringify(result.hardware)}`,
          `  hardwareSpecHash ${result.hardwareSpecHash}`,
          `  transaction ${result.transaction}`,
        ].join("\n"),
      );
    });

  node
    .command("start")
    .description("run the node agent until Ctrl-C")
    .option("--config <file>", "node agent config", "node-agent.yaml")
    .action(async (opts: { config: string }, command: Command) => {
      const options = globals(command);
      await startAction(opts.config, process.env, (url, nodeId) =>
        print(options, { url, nodeId }, `node agent ${nodeId} listening at ${url} (Ctrl-C stops)`),
      );
    });

  node
    .command("status")
    .description("the node on chain (registered, jailed, tier, stake) and its agent's /healthz")
    .option("--config <file>", "node agent config", "node-agent.yaml")
    .action(async (opts: { config: string }, command: Command) => {
      const options = globals(command);
      const status = await statusAction(opts.config, process.env);
      print(options, status, formatStatus(status));
    });

  addClaimCommand(node, true);
}
