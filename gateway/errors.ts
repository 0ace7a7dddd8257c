// One error type for everything the gateway refuses or fails at: an HTTP status, a stable code a
// client can branch on, and a reason a person can act on. The HTTP edge turns it into
// `{ "error": code, "reason": message }`; anything else thrown becomes a 500 with no detail leaked.
export class GatewayError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra response headers (Retry-After on a 429). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    status: number,
    code: string,
    reason: string,
    options?: ErrorOptions & { headers?: Record<string, string> },
  ) {
    super(reason, options);
    this.name = "GatewayError";
    this.status = status;
    this.code = code;
    this.headers = options?.headers ?? {};
  }
}
