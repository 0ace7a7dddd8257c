// `infra audit [--epoch N | --all] [--json] [--csv <file>] [--blob-peer <url>…] [--oracle <url>] [--db <url-or-dir>]`:
// recomputes every settlement from its published receipt batch and every balance from events,
// and compares both with the chain (auditor/). Exit 0: all match; 1: findings (printed as diffs)
// or bad usage; 2: the audit could not be carried out (RPC or blob store unreachable).
//
// Environment: INFRAMESH_BLOB_PEERS (comma list) and INFRAMESH_ORACLE_URL stand in for the flags;
// INFRAMESH_RPC_URL as for every command.
import { writeFile } from "node:fs/promises";
import path from "node:path";

import { type Command, Option } from "commander";

import { releaseZkResources } from "../../circuits/prover.ts";
import { AuditError, type AuditReport, runAudit } from "../../auditor/audit.ts";
import { findingsCsv, formatFinding } from "../../auditor/findings.ts";
import { readDeployment } from "../../keeper/chain.ts";
import { indexerConfig } from "../../keeper/config.ts";
import { PROJECT_ROOT } from "../lib/local-chain.ts";
import { formatTable } from "../lib/table.ts";
import { rpcUrlFor } from "./context.ts";
import { databaseFor } from "./events.ts";
import { CliError, toJson } from "./format.ts";
import { type GlobalOptions, globals } from "./output.ts";

// ------------------------------------------------------------------ pure

/** An epoch number from the command line. */
export function parseEpoch(text: string): bigint {
  if (!/^[0-9]+$/.test(text) || text.length > 19)
    throw new CliError(`--epoch must be an epoch number (a whole number ≥ 0), got "${text}"`);
  return BigInt(text);
}

/** A blob peer or oracle URL from the command line (http or https, no path needed). */
export function parseServiceUrl(name: string): (text: string, previous?: string[]) => string[] {
  return (text, previous = []) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new CliError(`${name} must be an http(s) URL such as http://127.0.0.1:8600, got "${text}"`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new CliError(`${name} must be an http(s) URL such as http://127.0.0.1:8600, got "${text}"`);
    return [...previous, text.replace(/\/$/, "")];
  };
}

/** The blob peers: the flags, else INFRAMESH_BLOB_PEERS. */
export function blobPeersFrom(flags: readonly string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  if (flags !== undefined && flags.length > 0) return [...flags];
  const list = (env.INFRAMESH_BLOB_PEERS ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  return list.flatMap((p) => parseServiceUrl("INFRAMESH_BLOB_PEERS")(p));
}

/** INFRAMESH_CONFIRMATIONS as the indexer reads it. */
export function confirmationsFrom(env: NodeJS.ProcessEnv): number {
  try {
    return indexerConfig(env).confirmations;
  } catch (error) {
    throw new CliError((error as Error).message, { cause: error });
  }
}

/** The report for people: a table of epochs, the balances compared, every finding as a diff. */
export function formatAuditReport(report: AuditReport): string {
  const lines: string[] = [];
  lines.push(
    report.epochs.length === 0
      ? "no settlement posted yet"
      : formatTable(
          [
            { header: "epoch", align: "right" },
            { header: "status" },
            { header: "receipts", align: "right" },
            { header: "batch sha256" },
            { header: "batch from" },
            { header: "result" },
          ],
          report.epochs.map((e) => [
            e.epoch,
            e.status,
            String(e.receipts),
            `${e.batchSha256.slice(0, 18)}…`,
            e.batchSource ?? "-",
            e.status === "voided" ? "skipped" : e.findings === 0 ? "ok" : `${e.findings} finding(s)`,
          ]),
        ),
  );
  const b = report.balances;
  if (b.nodes + b.stakers + b.locks + b.claimants + b.clients > 0)
    lines.push(
      `balances at block ${report.block}: ${b.nodes} node pools, ${b.stakers} staker positions, ${b.locks} unbonding locks, ` +
        `${b.claimants} claimants, ${b.clients} escrow clients recomputed from events`,
    );
  if (report.findings.length > 0) {
    lines.push("");
    for (const f of report.findings) lines.push(formatFinding(f));
    lines.push("", `audit FAILED: ${report.findings.length} finding(s)`);
  } else {
    lines.push(`audit passed: everything matches the chain at block ${report.block}`);
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------ command

interface AuditFlags {
  epoch?: bigint;
  all?: boolean;
  csv?: string;
  blobPeer?: string[];
  oracle?: string[];
  db?: string;
}

/** Registers `infra audit` on `program`. */
export function addAuditCommand(program: Command): void {
  program
    .command("audit")
    .description(
      "recompute every settlement from its receipt batch and every balance from events, and compare with the chain " +
        "(exit 0: all match; 1: findings; 2: could not audit)",
    )
    .addOption(new Option("--epoch <n>", "audit this epoch's settlement only").argParser(parseEpoch).conflicts("all"))
    .addOption(new Option("--all", "audit every settlement and every balance (the default)"))
    .option("--csv <file>", "also write the findings as CSV to <file>")
    .option(
      "--blob-peer <url>",
      "a blob-store peer holding the receipt batches (repeatable; default INFRAMESH_BLOB_PEERS)",
      parseServiceUrl("--blob-peer"),
    )
    .option("--oracle <url>", "an oracle's API, asked for a batch no blob peer has", parseServiceUrl("--oracle"))
    .option("--db <url-or-dir>", "the indexer's database to catch up and read (default: a temporary one)")
    .action(async (flags: AuditFlags, command: Command) => {
      const options: GlobalOptions = globals(command);
      const env = process.env;
      if (!/^[a-zA-Z0-9_-]+$/.test(options.network)) throw new CliError(`invalid network name "${options.network}"`);
      const record = await readDeployment(
        env.INFRAMESH_DEPLOYMENTS_DIR ?? path.join(PROJECT_ROOT, "deployments"),
        options.network,
      ).catch((error: unknown) => {
        throw new CliError((error as Error).message, { cause: error });
      });
      const oracleUrl =
        flags.oracle?.[0] ??
        (env.INFRAMESH_ORACLE_URL ? parseServiceUrl("INFRAMESH_ORACLE_URL")(env.INFRAMESH_ORACLE_URL)[0] : undefined);
      let report: AuditReport;
      try {
        report = await runAudit({
          record,
          rpcUrl: rpcUrlFor(options.network, env),
          epochs: flags.epoch ?? "all",
          blobPeers: blobPeersFrom(flags.blobPeer, env),
          oracleUrl,
          database: flags.db === undefined ? undefined : databaseFor(flags.db, options.network, env),
          // A shared indexer database keeps the indexer's own confirmation depth.
          confirmations: flags.db === undefined ? 0 : confirmationsFrom(env),
        });
      } catch (error) {
        if (error instanceof AuditError && (error.code === "unknown_epoch" || error.code === "no_blob_peers"))
          throw new CliError(error.message, { cause: error });
        throw error;
      } finally {
        // The Groth16 verifier's curve runs worker threads that would keep the command alive.
        await releaseZkResources();
      }
      if (flags.csv !== undefined) await writeFile(flags.csv, findingsCsv(report.findings));
      process.stdout.write(options.json ? toJson(report) : `${formatAuditReport(report)}\n`);
      if (!report.ok) throw new CliError(`the audit found ${report.findings.length} discrepancies`);
    });
}
