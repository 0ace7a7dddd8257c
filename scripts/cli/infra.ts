#!/usr/bin/env node
// `infra`: the Inframesh command line.
//
//   npx infra stake --node <address> --amount <tokens>   self-stake (or stake on any node); approves first
//   npx infra delegate --node <address> --amount <tokens> stake on another operator's node
//   npx infra unbond --node <address> --amount <tokens>  start an unbonding lock
//   npx infra rebond --node <address> --lock <id>        cancel a lock
//   npx infra withdraw --node <address> [--lock <id>]    withdraw matured locks
//   npx infra status [--account <address>] [--node <address>]  stake, locks with time left, tiers
//   npx infra status --oracle <url>                      …plus the rewards still to claim
//   npx infra transfer --to <address> [--amount <tokens>] [--eth <ether>]  fund an account
//   npx infra wallet create <file>                       a new encrypted JSON keystore
//   npx infra model register <name>                      register a model; the key's account publishes it
//   npx infra model publish <dir> --peer <url>…          shard <dir>/model.yaml's weights 10+4, upload them,
//                                                        publishVersion, then setMatureModel (unless --no-mature)
//   npx infra model mature <model> <manifestHash>        point a model at a published version
//   npx infra model show <model>                         a model and its serving version
//   npx infra blob serve <dir> [--port 8600]             a blob-store peer on 127.0.0.1 until Ctrl-C
//   npx infra events --contract <key> [--event Name]     a contract's events, from the indexer's database or
//                    [--from-block N] [--to-block N]     the chain (see scripts/cli/events.ts)
//   npx infra node init | register | start | status      a node operator's agent (see docs/node-agent.md)
//   npx infra node claim --oracle <url>                  a node's rewards (commission, the rest to its pool)
//   npx infra claim --oracle <url> [--account <address>] a publisher's or the treasury's rewards
//   npx infra infer <model> --input <json|@file>         one call through a gateway, proof verified
//   npx infra audit [--epoch N | --all] [--csv <file>]    recompute settlements and balances, compare with the
//                   [--blob-peer <url>…] [--oracle <url>] chain; exit 1 with diffs on a mismatch (docs/auditor.md)
//
// Global: --network <name> (reads deployments/<name>.json; default localhost), --json,
// --keystore <file>. Keys: see wallet.ts. Node 22 runs this file as is:
// `npx` puts node_modules/.bin (the pinned Node 22) first on PATH, which the shebang finds.
import path from "node:path";

import { Command, CommanderError, Option } from "commander";

import { readDeployment } from "../../keeper/chain.ts";
import { PROJECT_ROOT } from "../lib/local-chain.ts";
import { startBlobServer } from "../../sdk/blob/server.ts";
import { createProgress } from "./progress.ts";
import { openNetwork } from "./context.ts";

import { addAuditCommand } from "./audit.ts";
import { eventsAction, formatEvents, parseBlock, parseContractKey } from "./events.ts";
import {
  CliError,
  formatModel,
  modelJson,
  parseManifestHash,
  parseModelRef,
  parsePort,
  parsePositiveInt,
  parsePrice,
  renderProgress,
  toJson,
} from "./format.ts";
import { matureAction, publishAction, registerAction, resolveModel } from "./model.ts";
import { globals, print, type GlobalOptions } from "./output.ts";
import { registerStakerCommands } from "./staker-commands.ts";
import { createKeystore, openWallet } from "./wallet.ts";
import { addNodeCommands } from "./node-commands.ts";
import { registerClientCommands } from "./client-commands.ts";

/** Progress and steps go to stderr, and only to a terminal without --json. */
function narrator(options: GlobalOptions) {
  const live = !options.json && process.stderr.isTTY;
  return {
    onStep: (text: string) => {
      if (!options.json) process.stderr.write(`> ${text}\n`);
    },
    onProgress: live
      ? (sent: number, total: number) => {
          process.stderr.write(`\r  ${renderProgress(sent, total)}${sent >= total ? "\n" : ""}`);
        }
      : undefined,
  };
}

function buildProgram(): Command {
  const program = new Command("infra")
    .description("Inframesh command line: models on the network whose contracts are the source of truth")
    .addOption(new Option("--network <name>", "network whose deployments/<name>.json to use").default("localhost"))
    .option("--json", "print one JSON document on stdout", false)
    .option("--keystore <file>", "encrypted JSON keystore that signs (password: INFRAMESH_KEYSTORE_PASSWORD[_FILE])")
    .showHelpAfterError()
    .exitOverride();

  const model = program.command("model").description("register, publish, set the serving version of, show models");

  model
    .command("register <name>")
    .description("register a model under a unique name; the signing account becomes its publisher")
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globals(command);
      const network = await openNetwork(options.network, process.env, createProgress(options.json));
      const result = await registerAction(network.contracts, await openWallet(network, options), name);
      print(options, result, `registered model ${result.modelId} "${name}", publisher ${result.publisher}`);
    });

  model
    .command("publish <dir>")
    .description(
      "shard the weights named by <dir>/model.yaml (10+4), upload them and the manifest to the peers, " +
        "publish the version and make it the serving one",
    )
    .option("--peer <url...>", "blob-store peer base URL (repeat or list several)")
    .option("--copies <n>", "peers holding each shard", parsePositiveInt("--copies"), 2)
    // The default's label is given: commander would JSON.stringify 0n for --help, and throw.
    .addOption(
      new Option("--price <units>", "price per call, in base units of the payment token")
        .argParser(parsePrice)
        .default(0n, "0"),
    )
    .option("--out <dir>", "where the shards and the manifest are written (default <dir>/blobs)")
    .option("--no-mature", "publish the version without making it the serving one")
    .action(
      async (
        dir: string,
        opts: { peer?: string[]; copies: number; price: bigint; out?: string; mature: boolean },
        command: Command,
      ) => {
        const options = globals(command);
        const network = await openNetwork(options.network, process.env, createProgress(options.json));
        const wallet = await openWallet(network, options);
        const result = await publishAction(network.contracts, wallet, dir, {
          peers: opts.peer ?? [],
          copies: opts.copies,
          price: opts.price,
          mature: opts.mature,
          out: opts.out,
          ...narrator(options),
        });
        print(
          options,
          result,
          [
            `published model ${result.modelId} "${result.name}" version ${result.version} (#${result.versionNumber})`,
            `  manifest ${result.manifestHash} (${result.manifestPath})`,
            `  root ${result.shardRoot}, ${result.shards} shards, ${result.bytes} bytes, ${result.uploads} uploads`,
            result.mature === null
              ? "  not serving yet: infra model mature <model> <manifest>"
              : `  serving at price ${result.price}`,
          ].join("\n"),
        );
      },
    );

  model
    .command("mature <model> <manifestHash>")
    .description("point a model (id or name) at its published version with that manifest (setMatureModel)")
    .option("--price <units>", "price per call (default: the version's current price)", parsePrice)
    .action(async (ref: string, hash: string, opts: { price?: bigint }, command: Command) => {
      const options = globals(command);
      const modelRef = parseModelRef(ref);
      const manifestHash = parseManifestHash(hash);
      const network = await openNetwork(options.network, process.env, createProgress(options.json));
      const result = await matureAction(
        network.contracts,
        await openWallet(network, options),
        modelRef,
        manifestHash,
        opts.price,
      );
      print(
        options,
        result,
        `model ${result.modelId} "${result.name}" now serves version #${result.versionNumber} (manifest ${manifestHash}) at price ${result.price}`,
      );
    });

  model
    .command("show <model>")
    .description("a model (id or name) and its serving version")
    .action(async (ref: string, _opts: unknown, command: Command) => {
      const options = globals(command);
      const modelRef = parseModelRef(ref);
      const network = await openNetwork(options.network, process.env, createProgress(options.json));
      const status = await resolveModel(network.contracts, modelRef);
      print(options, modelJson(status), formatModel(status));
    });

  program
    .command("blob")
    .description("content-addressed blob store")
    .command("serve <dir>")
    .description("serve the blobs in <dir> (GET/HEAD/PUT /blob/<sha256>) until Ctrl-C")
    .option("--host <address>", "interface to listen on", "127.0.0.1")
    .option("--port <port>", "port (0 picks a free one)", parsePort, 8600)
    .action(async (dir: string, opts: { host: string; port: number }, command: Command) => {
      const options = globals(command);
      const server = await startBlobServer({ dir, host: opts.host, port: opts.port }).catch((error: unknown) => {
        throw new CliError(`cannot serve on ${opts.host}:${opts.port}: ${(error as Error).message}`, { cause: error });
      });
      print(options, { url: server.url, dir }, `serving ${dir} at ${server.url} (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
      });
      await server.close();
    });

  registerStakerCommands(program);

  program
    .command("wallet")
    .description("keys for signing")
    .command("create <file>")
    .description("write a new encrypted JSON keystore (password from INFRAMESH_KEYSTORE_PASSWORD[_FILE])")
    .action(async (file: string, _opts: unknown, command: Command) => {
      const options = globals(command);
      const created = await createKeystore(file);
      print(options, created, `created ${file} for ${created.address}`);
    });
  program
    .command("events")
    .description(
      "a protocol contract's events: from the indexer's database when one is configured (--db, DATABASE_URL, " +
        "INFRAMESH_DATA_DIR or the default data directory), else from the chain",
    )
    .requiredOption("--contract <key>", "contract key in deployments/<network>.json (nodeStaking, …)", parseContractKey)
    .option("--event <name>", "only this event")
    .option("--from-block <n>", "first block (default: the contract's deploy block)", parseBlock("--from-block"))
    .option("--to-block <n>", "last block (default: the head)", parseBlock("--to-block"))
    .option("--db <url-or-dir>", "the indexer's database: a postgres:// URL or a PGlite data directory")
    .option("--chain", "read the chain with getLogs even when a database is configured", false)
    .action(
      async (
        opts: {
          contract: ReturnType<typeof parseContractKey>;
          event?: string;
          fromBlock?: number;
          toBlock?: number;
          db?: string;
          chain: boolean;
        },
        command: Command,
      ) => {
        const options = globals(command);
        if (!/^[a-zA-Z0-9_-]+$/.test(options.network)) throw new CliError(`invalid network name "${options.network}"`);
        const record = await readDeployment(
          process.env.INFRAMESH_DEPLOYMENTS_DIR ?? path.join(PROJECT_ROOT, "deployments"),
          options.network,
        ).catch((error: unknown) => {
          throw new CliError((error as Error).message, { cause: error });
        });
        const query = { contract: opts.contract, event: opts.event, fromBlock: opts.fromBlock, toBlock: opts.toBlock };
        const result = await eventsAction(options.network, record, query, { db: opts.db, chain: opts.chain });
        const unconfirmed = result.rows.some((r) => r.confirmed === false) ? "\n* not confirmed yet" : "";
        print(
          options,
          { network: options.network, contract: opts.contract, source: result.source, events: result.rows },
          `${opts.contract} ${record.contracts[opts.contract].address} on ${options.network}, from the ${result.source}\n` +
            `${formatEvents(result.rows)}${unconfirmed}`,
        );
      },
    );
  addNodeCommands(program, (command) => globals(command), print);
  registerClientCommands(program);
  addAuditCommand(program);

  return program;
}

/** Runs the CLI on `argv` (as process.argv); resolves to the exit code. */
async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`infra: ${message}\n`);
    if (process.env.INFRAMESH_DEBUG !== undefined && error instanceof Error && error.cause !== undefined) {
      console.error("cause:", error.cause);
    }
    return error instanceof CliError ? 1 : 2;
  }
}

process.exitCode = await main(process.argv);
