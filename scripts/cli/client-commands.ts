// `infra infer` (a client's call through a gateway) and `infra claim` / `infra node claim` (an
// earning account is paid), wired to commander. The work is in infer.ts and claim.ts.
import type { Command } from "commander";
import type { Address } from "viem";

import { loadAgentConfig } from "../../node-agent/config.ts";
import { claimAction, defaultOracleUrl, formatClaim, parseEpoch } from "./claim.ts";
import { openNetwork } from "./context.ts";
import { CliError, parseModelRef } from "./format.ts";
import { defaultGatewayUrl, formatInfer, inferAction, parseMaxFee } from "./infer.ts";
import { globals, print } from "./output.ts";
import { createProgress } from "./progress.ts";
import { parseNodeId, readTokenInfo, stakingContracts } from "./stake.ts";
import { openWallet } from "./wallet.ts";

/** `<parent> claim`: `requireNode` for `infra node claim`, which refuses an account that is not a node. */
export function addClaimCommand(parent: Command, requireNode: boolean): void {
  const command = parent
    .command("claim")
    .description(
      requireNode
        ? "claim the node's rewards: the rest after commission into its staking pool, then the accrued commission to the operator"
        : "claim an earning account's rewards (model publisher, treasury, node) from RewardClaims",
    )
    .option("--oracle <url>", "reward oracle base URL (default: INFRAMESH_ORACLE_URL)")
    .option(
      "--epoch <n>",
      "the epoch to claim at (default: the latest funded one, the only one that verifies)",
      parseEpoch,
    );
  if (requireNode) {
    command.option("--config <file>", "sign with this node agent config's operator keystore (instead of --keystore)");
    command.option(
      "--keep-commission",
      "leave the accrued commission in staking (withdraw it later; a claim alone is cheaper)",
    );
  }
  if (!requireNode) {
    command.option(
      "--account <address>",
      "claim for this account (default: the signing one); it is paid, not you",
      parseNodeId,
    );
  }
  command.action(
    async (
      opts: { oracle?: string; epoch?: bigint; account?: Address; config?: string; keepCommission?: boolean },
      cmd: Command,
    ) => {
      const options = globals(cmd);
      const oracle = opts.oracle ?? defaultOracleUrl(process.env);
      if (oracle === undefined) throw new CliError("no oracle: pass --oracle <url> or set INFRAMESH_ORACLE_URL");
      const progress = createProgress(options.json);
      const context = await openNetwork(options.network, process.env, progress);
      const signing =
        opts.config === undefined ? { keystore: options.keystore, env: process.env } : await operatorKey(opts.config);
      const wallet = await openWallet(context, { keystore: signing.keystore }, signing.env);
      const token = await readTokenInfo(stakingContracts(context));
      const result = await claimAction(context, wallet, {
        oracle,
        requireNode,
        withdrawCommission: requireNode && opts.keepCommission !== true,
        ...(opts.account === undefined ? {} : { account: opts.account }),
        ...(opts.epoch === undefined ? {} : { epoch: opts.epoch }),
      });
      print(options, result, formatClaim(result, token));
    },
  );
}

/** The operator keystore of a node agent config, and the environment that unlocks it. */
async function operatorKey(configFile: string): Promise<{ keystore: string; env: NodeJS.ProcessEnv }> {
  let config;
  try {
    config = await loadAgentConfig(configFile);
  } catch (error) {
    throw new CliError(`cannot use --config ${configFile}: ${(error as Error).message}`, { cause: error });
  }
  const env = { ...process.env };
  const hasPassword =
    (env.INFRAMESH_KEYSTORE_PASSWORD ?? "") !== "" || (env.INFRAMESH_KEYSTORE_PASSWORD_FILE ?? "") !== "";
  if (!hasPassword && config.keystore_password_file !== undefined) {
    env.INFRAMESH_KEYSTORE_PASSWORD_FILE = config.keystore_password_file;
  }
  return { keystore: config.keystore, env };
}

export function registerClientCommands(program: Command): void {
  program
    .command("infer <model>")
    .description(
      "call a model through a gateway: signs the work unit with your key (paid from your deposit) or uses " +
        "an API key; verifies the node's proof of serving before printing the output",
    )
    .requiredOption("--input <json|@file>", 'the input: a JSON array (sent as {"input": [...]}), an object, or @file')
    .option("--gateway <url>", "gateway base URL (default: INFRAMESH_GATEWAY_URL or http://127.0.0.1:8080)")
    .option("--max-fee <units>", "most you pay for the call, base units (default: the model's price)", parseMaxFee)
    .option("--api-key <key>", "call with a gateway API key instead of your own signature (or INFRAMESH_API_KEY)")
    .action(
      async (
        ref: string,
        opts: { input: string; gateway?: string; maxFee?: bigint; apiKey?: string },
        command: Command,
      ) => {
        const options = globals(command);
        const model = parseModelRef(ref);
        const progress = createProgress(options.json);
        const context = await openNetwork(options.network, process.env, progress);
        const apiKey = opts.apiKey ?? (process.env.INFRAMESH_API_KEY || undefined);
        const result = await inferAction(
          context,
          {
            model,
            input: opts.input,
            gateway: opts.gateway ?? defaultGatewayUrl(process.env),
            ...(opts.maxFee === undefined ? {} : { maxFee: opts.maxFee }),
            ...(apiKey === undefined ? {} : { apiKey }),
            wallet: () => openWallet(context, { keystore: options.keystore }),
          },
          progress,
        );
        print(options, result, formatInfer(result));
      },
    );

  addClaimCommand(program, false);
}
