// A call's logger, made only when something is logged: a call served without a warning costs no
// pino child logger (binding a request id, a model and a job id would be three per call).
import type { Level, Logger } from "pino";

/** What a call logs with: a pino Logger is one, and so is a LazyLog. */
export interface CallLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): CallLog;
}

/** `parent.child(b1).child(b2)…`, made on the first line logged at a level `parent` writes. */
export class LazyLog implements CallLog {
  readonly #parent: Logger;
  readonly #bindings: readonly Record<string, unknown>[];
  #logger: Logger | undefined;

  constructor(parent: Logger, bindings: readonly Record<string, unknown>[]) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  #log(level: Level, obj: object, msg: string): void {
    if (!this.#parent.isLevelEnabled(level)) return;
    this.#logger ??= this.#bindings.reduce((l, b) => l.child(b), this.#parent);
    this.#logger[level](obj, msg);
  }

  debug(obj: object, msg: string): void {
    this.#log("debug", obj, msg);
  }
  info(obj: object, msg: string): void {
    this.#log("info", obj, msg);
  }
  warn(obj: object, msg: string): void {
    this.#log("warn", obj, msg);
  }
  error(obj: object, msg: string): void {
    this.#log("error", obj, msg);
  }
  child(bindings: Record<string, unknown>): CallLog {
    return new LazyLog(this.#parent, [...this.#bindings, bindings]);
  }
}
