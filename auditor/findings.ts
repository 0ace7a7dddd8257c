// What the auditor reports: one finding per thing that does not add up, each a readable diff
// (what, expected, actual) with where it was found (epoch, account, transaction).

/** Stable finding codes: scripts match on them; add new ones, never rename. */
export const FINDING_CODES = [
  // receipt batches
  "batch_unavailable",
  "batch_sha256_mismatch",
  "batch_invalid",
  "batch_line_mismatch",
  "bad_client_signature",
  "bad_node_signature",
  "receipt_inconsistent",
  "input_hash_mismatch",
  "zk_proof_rejected",
  "fee_above_max_fee",
  "fee_not_a_price",
  "wrong_publisher",
  "duplicate_job",
  // settlements
  "settlement_mismatch",
  "debit_mismatch",
  "debits_missing",
  "slash_overallocated",
  "builds_on_bad_epoch",
  // balances
  "stake_mismatch",
  "lock_mismatch",
  "claimed_mismatch",
  "commission_mismatch",
  "overclaimed",
  "escrow_mismatch",
  "reserve_mismatch",
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

export interface Finding {
  code: FindingCode;
  /** One sentence: what was compared. */
  what: string;
  expected: string;
  actual: string;
  epoch?: string;
  account?: string;
  tx?: string;
}

export function finding(
  code: FindingCode,
  what: string,
  expected: unknown,
  actual: unknown,
  where: { epoch?: bigint | string; account?: string; tx?: string } = {},
): Finding {
  const out: Finding = { code, what, expected: String(expected), actual: String(actual) };
  if (where.epoch !== undefined) out.epoch = String(where.epoch);
  if (where.account !== undefined) out.account = where.account;
  if (where.tx !== undefined) out.tx = where.tx;
  return out;
}

/** A finding as people read it: a small diff. */
export function formatFinding(f: Finding): string {
  const where = [
    f.epoch !== undefined ? `epoch ${f.epoch}` : undefined,
    f.account !== undefined ? `account ${f.account}` : undefined,
    f.tx !== undefined ? `tx ${f.tx}` : undefined,
  ].filter((x) => x !== undefined);
  return [
    `✗ ${f.code}: ${f.what}${where.length > 0 ? ` (${where.join(", ")})` : ""}`,
    `  - expected: ${f.expected}`,
    `  + actual:   ${f.actual}`,
  ].join("\n");
}

const CSV_COLUMNS = ["code", "epoch", "account", "tx", "what", "expected", "actual"] as const;

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Findings as CSV (RFC 4180), one header line; an empty report is the header alone. */
export function findingsCsv(findings: readonly Finding[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const f of findings) lines.push(CSV_COLUMNS.map((c) => csvCell(f[c] ?? "")).join(","));
  return `${lines.join("\r\n")}\r\n`;
}
