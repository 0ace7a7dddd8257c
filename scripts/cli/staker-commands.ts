// `infra stake | delegate | unbond | rebond | withdraw | status`: the staker's commands, wired to
// commander. The work is in stake.ts; this file parses options and prints.
import type { Command } from "commander";
import { formatUnits, type Address } from "viem";

import { createProgress } from "./progress.ts";
import { defaultOracleUrl, pendingRewards } from "./claim.ts";
import { openNetwork, type NetworkContext } from "./context.ts";
import { CliError } from "./format.ts";
import { globals, print, type GlobalOptions } from "./output.ts";
import { depositAction, escrowWithdrawAction } from "./escrow.ts";
import {
  formatStakerStatus,
  formatTimeLeft,
  isoTime,
  parseLockId,
  parseNodeId,
  parseTokenAmount,
  readTokenInfo,
  rebondAction,
  stakeAction,
  stakingContracts,
  statusAction,
  transferAction,
  unbondAction,
  withdrawAction,
} from "./stake.ts";
import { openWallet, resolveAccount } from "./wallet.ts";

async function open(options: GlobalOptions) {
  const context = await openNetwork(options.network, process.env, createProgress(options.json));
  const wallet = await openWallet(context, { keystore: options.keystore });
  const contracts = stakingContracts(context);
  const token = await readTokenInfo(contracts);
  return { context, wallet, contracts, token };
}

function progress(options: GlobalOptions, text: string): void {
  if (!options.json) process.stderr.write(`> ${text}\n`);
}

export function registerStakerCommands(program: Command): void {
  for (const action of ["stake", "delegate"] as const) {
    program
      .command(action)
      .description(
        action === "stake"
          ? "stake tokens on a node (self-stake when you operate it); approves the token first when needed"
          : "delegate tokens to another operator's node: you share its rewards and its slashes",
      )
      .requiredOption("--node <address>", "the node's id (its operator's address)", parseNodeId)
      .requiredOption("--amount <tokens>", "how many tokens, e.g. 500 or 0.25")
      .action(async (opts: { node: Address; amount: string }, command: Command) => {
        const options = globals(command);
        const { wallet, contracts, token } = await open(options);
        const amount = parseTokenAmount(opts.amount, token.decimals);
        progress(options, `${action} ${opts.amount} ${token.symbol} on ${opts.node}: waiting for the transaction`);
        const result = await stakeAction(contracts, wallet, opts.node, amount, action);
        if (result.warning !== undefined && !options.json) process.stderr.write(`warning: ${result.warning}\n`);
        print(
          options,
          result,
          `${action === "stake" ? "staked" : "delegated"} ${formatUnits(amount, token.decimals)} ${token.symbol} ` +
            `on ${result.node} (${result.shares} shares), tx ${result.transaction}`,
        );
      });
  }

  program
    .command("unbond")
    .description("start withdrawing stake: it moves to an unbonding lock (still slashable) until it matures")
    .requiredOption("--node <address>", "the node's id", parseNodeId)
    .requiredOption("--amount <tokens>", "how many tokens")
    .action(async (opts: { node: Address; amount: string }, command: Command) => {
      const options = globals(command);
      const { wallet, contracts, token } = await open(options);
      const amount = parseTokenAmount(opts.amount, token.decimals);
      progress(options, `unbond ${opts.amount} ${token.symbol} from ${opts.node}: waiting for the transaction`);
      const result = await unbondAction(contracts, wallet, opts.node, amount);
      const now = (await contracts.publicClient.getBlock({ blockTag: "latest" })).timestamp;
      print(
        options,
        result,
        `lock ${result.lockId}: ${formatUnits(amount, token.decimals)} ${token.symbol} withdrawable in ` +
          `${formatTimeLeft(result.withdrawableAt, now)} (at ${isoTime(result.withdrawableAt)}); then ` +
          `infra withdraw --node ${opts.node} --lock ${result.lockId}`,
      );
    });

  program
    .command("rebond")
    .description("cancel an unbonding lock: its value goes back to your active stake")
    .requiredOption("--node <address>", "the node's id", parseNodeId)
    .requiredOption("--lock <id>", "the lock number (see infra status)", parseLockId)
    .action(async (opts: { node: Address; lock: bigint }, command: Command) => {
      const options = globals(command);
      const { wallet, contracts, token } = await open(options);
      const result = await rebondAction(contracts, wallet, opts.node, opts.lock);
      print(
        options,
        result,
        `rebonded lock ${result.lockId}: ${formatUnits(result.value, token.decimals)} ${token.symbol} active again on ${result.node}`,
      );
    });

  program
    .command("deposit")
    .description("deposit tokens into the payment escrow: what your inference calls are paid from")
    .requiredOption("--amount <tokens>", "how many tokens")
    .action(async (opts: { amount: string }, command: Command) => {
      const options = globals(command);
      const { context, wallet, token } = await open(options);
      const amount = parseTokenAmount(opts.amount, token.decimals);
      progress(options, `deposit ${opts.amount} ${token.symbol}: waiting for the transaction`);
      const result = await depositAction(context, wallet, amount, token);
      print(
        options,
        result,
        `deposited ${formatUnits(amount, token.decimals)} ${token.symbol}; escrow balance ` +
          `${formatUnits(result.balance, token.decimals)} ${token.symbol}, tx ${result.transaction}`,
      );
    });

  program
    .command("withdraw")
    .description(
      "--node: withdraw matured unbonding locks (one with --lock, else all); " +
        "--escrow: request (--amount) or complete a payment-escrow withdrawal",
    )
    .option("--node <address>", "withdraw stake from this node's unbonding locks", parseNodeId)
    .option("--lock <id>", "only this lock", parseLockId)
    .option("--escrow", "withdraw from the payment escrow instead")
    .option("--amount <tokens>", "with --escrow: request a withdrawal of this many tokens")
    .action(async (opts: { node?: Address; lock?: bigint; escrow?: boolean; amount?: string }, command: Command) => {
      const options = globals(command);
      if ((opts.node === undefined) === (opts.escrow !== true)) {
        throw new CliError("say what to withdraw: --node <address> (stake) or --escrow (payment escrow)");
      }
      const { context, wallet, contracts, token } = await open(options);
      if (opts.escrow === true) {
        const amount = opts.amount === undefined ? undefined : parseTokenAmount(opts.amount, token.decimals);
        const result = await escrowWithdrawAction(context, wallet, amount, token);
        print(
          options,
          result,
          result.step === "requested"
            ? `withdrawal of ${formatUnits(result.amount, token.decimals)} ${token.symbol} requested: ` +
                `withdrawable in ${formatTimeLeft(result.withdrawableAt, result.now)} (at ${isoTime(result.withdrawableAt)}); ` +
                "then run infra withdraw --escrow"
            : `withdrew ${formatUnits(result.amount, token.decimals)} ${token.symbol} from the payment escrow`,
        );
        return;
      }
      const result = await withdrawAction(contracts, wallet, opts.node!, opts.lock);
      print(
        options,
        result,
        `withdrew ${formatUnits(result.total, token.decimals)} ${token.symbol} from ${result.withdrawn.length} lock(s) on ${result.node}`,
      );
    });

  program
    .command("transfer")
    .description("send tokens and/or ether (for gas) to an account: fund an operator key, a delegator, a client")
    .requiredOption("--to <address>", "the receiving account", parseNodeId)
    .option("--amount <tokens>", "tokens to send, e.g. 10000")
    .option("--eth <ether>", "ether to send for gas, e.g. 1")
    .action(async (opts: { to: Address; amount?: string; eth?: string }, command: Command) => {
      const options = globals(command);
      if (opts.amount === undefined && opts.eth === undefined) {
        throw new CliError("say what to send: --amount <tokens>, --eth <ether>, or both");
      }
      const { wallet, contracts, token } = await open(options);
      const tokens = opts.amount === undefined ? 0n : parseTokenAmount(opts.amount, token.decimals);
      const ether = opts.eth === undefined ? 0n : parseTokenAmount(opts.eth, 18);
      const result = await transferAction(contracts, wallet, opts.to, tokens, ether);
      const sent = [
        ...(tokens > 0n ? [`${formatUnits(tokens, token.decimals)} ${token.symbol}`] : []),
        ...(ether > 0n ? [`${formatUnits(ether, 18)} ETH`] : []),
      ];
      print(options, result, `sent ${sent.join(" and ")} to ${opts.to}, tx ${result.transactions.join(", ")}`);
    });

  program
    .command("status")
    .description("your stake per node, unbonding locks with time left, node tiers")
    .option("--account <address>", "whose status (default: the signing account)", parseNodeId)
    .option("--node <address>", "only this node", parseNodeId)
    .option("--oracle <url>", "reward oracle: show rewards still to claim (default: INFRAMESH_ORACLE_URL)")
    .action(async (opts: { account?: Address; node?: Address; oracle?: string }, command: Command) => {
      const options = globals(command);
      const context: NetworkContext = await openNetwork(options.network, process.env, createProgress(options.json));
      let account = opts.account;
      if (account === undefined) {
        account = await resolveAccount({ keystore: options.keystore }).then(
          (a) => a.address,
          (error: unknown) => {
            throw new CliError(`${(error as Error).message} (or pass --account <address>)`, { cause: error });
          },
        );
      }
      const status = await statusAction(context, account, opts.node);
      const oracle = opts.oracle ?? defaultOracleUrl(process.env);
      const withRewards =
        oracle === undefined ? status : { ...status, rewards: await pendingRewards(context, oracle, account) };
      print(options, withRewards, formatStakerStatus(withRewards));
    });
}
