// Schema migrations, applied in order and recorded in schema_migrations. Never edit a released
// entry: append a new one. Amounts are NUMERIC(78,0) (any uint256); times are integers.
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE receipts (
      job_id text PRIMARY KEY,
      body jsonb NOT NULL,
      body_sha256 text NOT NULL,
      client text NOT NULL,
      node text NOT NULL,
      model_id bigint NOT NULL,
      model_version bigint NOT NULL,
      status text NOT NULL CHECK (status IN ('queued', 'verified', 'rejected', 'settled')),
      reason_code text,
      reason text,
      fee numeric(78, 0),
      publisher text,
      epoch bigint,
      received_at bigint NOT NULL,
      updated_at_ms bigint NOT NULL
    )`,
    "CREATE INDEX receipts_queued ON receipts (updated_at_ms) WHERE status = 'queued'",
    "CREATE INDEX receipts_unassigned ON receipts (job_id) WHERE status = 'verified' AND epoch IS NULL",
    "CREATE INDEX receipts_epoch ON receipts (epoch, job_id)",
    // Fees of verified receipts not yet debited on chain, per client: checked against the escrow.
    "CREATE TABLE client_pending (client text PRIMARY KEY, pending numeric(78, 0) NOT NULL CHECK (pending >= 0))",
    `CREATE TABLE epochs (
      epoch bigint PRIMARY KEY,
      state text NOT NULL CHECK (state IN ('building', 'signed', 'posted', 'final', 'funded', 'voided')),
      settlement jsonb,
      batch_sha256 text,
      debits jsonb,
      earnings jsonb,
      carried_slash numeric(78, 0) NOT NULL DEFAULT 0,
      signatures jsonb,
      tx_hash text,
      last_error text,
      updated_at_ms bigint NOT NULL
    )`,
  ],
  // Committee followers: job ids of the settlements they signed (a job id is signed in one epoch only).
  ["CREATE TABLE signed_jobs (job_id text PRIMARY KEY, epoch bigint NOT NULL)"],
];
