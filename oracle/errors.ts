// Typed errors of the oracle service: a short message for people, a stable code for machines,
// and the underlying cause kept for the logs.

/** Configuration that cannot run: what was wrong and what to set instead. */
export class OracleConfigError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(`oracle config: ${message}`, options);
    this.name = "OracleConfigError";
  }
}

/** A chain read or write that failed (RPC down, revert, wrong contract). */
export class OracleChainError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "OracleChainError";
  }
}

/** An epoch that cannot move forward now (nothing to settle, window open, committee short). */
export class EpochError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "EpochError";
    this.code = code;
  }
}
