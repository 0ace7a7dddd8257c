// The `infra` CLI's pure parts: argument parsing, text and JSON output, the progress bar.
import type { ModelStatus, VersionRecord } from "../../sdk/models.ts";
import { formatTable } from "../lib/table.ts";

/** A user-facing failure: printed as `infra: <message>`, exit code 1. */
export class CliError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "CliError";
  }
}

/** A model named on the command line: a decimal id ("3") or a name ("simplenet"). */
export type ModelRef = { id: bigint } | { name: string };

export function parseModelRef(text: string): ModelRef {
  if (/^[0-9]+$/.test(text)) {
    const id = BigInt(text);
    if (id === 0n) throw new CliError("model ids start at 1");
    return { id };
  }
  if (text === "") throw new CliError("a model is an id or a name");
  return { name: text };
}

export function describeModelRef(ref: ModelRef): string {
  return "id" in ref ? `model ${ref.id}` : `model "${ref.name}"`;
}

/** A price per call in the payment token's smallest unit: a non-negative integer. */
export function parsePrice(text: string): bigint {
  if (!/^[0-9]+$/.test(text)) throw new CliError(`price must be a whole number of base units, got "${text}"`);
  return BigInt(text);
}

/** A manifest hash as the registry takes it: 64 lowercase hex characters, "0x" tolerated. */
export function parseManifestHash(text: string): string {
  const hex = text.startsWith("0x") ? text.slice(2) : text;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new CliError(`manifest hash must be 64 hex characters, got "${text}"`);
  return hex.toLowerCase();
}

/** A positive whole number option (copies, timeouts). */
export function parsePositiveInt(name: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) throw new CliError(`${name} must be a positive whole number, got "${text}"`);
    return n;
  };
}

/** A TCP port, 0 for "any free one". */
export function parsePort(text: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n > 65_535) throw new CliError(`port must be 0..65535, got "${text}"`);
  return n;
}

/** JSON text with bigints as decimal strings (amounts and ids exceed 2^53), one trailing newline. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`;
}

function versionJson(record: VersionRecord): Record<string, unknown> {
  return { ...record, manifestHash: record.manifestHash.slice(2), shardRoot: record.shardRoot.slice(2) };
}

/** `infra model show --json`: the model and its serving version; hashes without "0x" as in manifests. */
export function modelJson(status: ModelStatus): Record<string, unknown> {
  return {
    modelId: status.modelId,
    name: status.name,
    publisher: status.publisher,
    pendingPublisher: status.pendingPublisher,
    versionCount: status.versionCount,
    serving:
      status.serving === undefined
        ? null
        : { versionNumber: status.serving.version, ...versionJson(status.serving.record) },
  };
}

/** `infra model show`: one line per field. */
export function formatModel(status: ModelStatus): string {
  const serving = status.serving;
  const rows: [string, string][] = [
    ["model id", String(status.modelId)],
    ["name", status.name],
    ["publisher", status.publisher],
    ["versions", String(status.versionCount)],
  ];
  if (serving === undefined) {
    rows.push(["serving", "none (setMatureModel not called yet)"]);
  } else {
    const r = serving.record;
    rows.push(
      ["serving", `${r.version} (version #${serving.version})`],
      ["manifest hash", r.manifestHash.slice(2)],
      ["shard root", r.shardRoot.slice(2)],
      ["shards", String(r.shardCount)],
      ["price per call", String(r.price)],
      ["access", r.access.kind],
      ["descriptor", r.descriptorHash.slice(2)],
    );
  }
  return formatTable([{ header: "field" }, { header: "value" }], rows);
}

/** `[#####-----]  42%  4.2 / 10.0 MiB` for a terminal line. */
export function renderProgress(sent: number, total: number, width = 30): string {
  const fraction = total === 0 ? 1 : Math.min(1, sent / total);
  const filled = Math.round(fraction * width);
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${mib(sent)} / ${mib(total)} MiB`;
}
