// Redis writes that no answer waits for (call statistics, attempt records, kept jobs), queued
// during a call and sent after it as one pipeline: the call's own path pays no Redis round trip
// and no socket write, and a burst of calls shares one pipeline. Writes queued in the same turn
// of the event loop go out together on the next `setImmediate`, that is after the answers of
// that turn were written to their sockets; with `delayMs`, the writes of every call answered
// within that time share one pipeline (on a loaded machine, each socket write costs a call the
// time the kernel gives Redis to read it).
import type { ChainableCommander, Redis } from "ioredis";

/** One queued write: adds its command(s) to the pipeline it is given. */
export type PipelinedWrite = (pipeline: ChainableCommander) => void;

interface Queued {
  write: PipelinedWrite;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A pipeline with its command count (ioredis keeps it; absent from the chainable type). */
type Counted = ChainableCommander & { length: number };

export interface WriteBatchOptions {
  /**
   * How long the first queued write waits for others before the pipeline is sent: 0 (the default)
   * sends on the next `setImmediate`; more gathers the writes of many calls into one socket write.
   */
  delayMs?: number;
}

export class RedisWriteBatch {
  readonly #redis: Redis;
  readonly #delayMs: number;
  #queue: Queued[] = [];
  #scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  #inFlight = new Set<Promise<unknown>>();

  constructor(redis: Redis, options: WriteBatchOptions = {}) {
    this.#redis = redis;
    this.#delayMs = options.delayMs ?? 0;
  }

  /**
   * Queues `write` (one or more commands, kept together and in order); resolves once Redis ran
   * them, rejects with the first of their errors.
   */
  add(write: PipelinedWrite): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
      if (this.#scheduled === undefined) {
        this.#scheduled =
          this.#delayMs > 0 ? setTimeout(() => this.#flush(), this.#delayMs) : setImmediate(() => this.#flush());
      }
    });
  }

  /** Sends what is queued now and resolves once every pipeline sent so far has been answered. */
  async flush(): Promise<void> {
    this.#flush();
    await Promise.allSettled([...this.#inFlight]);
  }

  #flush(): void {
    if (this.#scheduled !== undefined) {
      clearTimeout(this.#scheduled as NodeJS.Timeout);
      clearImmediate(this.#scheduled as NodeJS.Immediate);
    }
    this.#scheduled = undefined;
    const queued = this.#queue;
    this.#queue = [];
    const pipeline = this.#redis.pipeline() as Counted;
    // Where each write's commands end in the pipeline.
    const ends: number[] = [];
    for (const q of queued) {
      try {
        q.write(pipeline);
      } catch (error) {
        q.reject(error as Error);
      }
      ends.push(pipeline.length);
    }
    if (pipeline.length === 0) return;
    const exec = pipeline.exec().then(
      (results) => {
        let start = 0;
        queued.forEach((q, i) => {
          const end = ends[i]!;
          let error: Error | null | undefined;
          for (let c = start; c < end && !error; c++) error = results?.[c]?.[0];
          start = end;
          if (error) q.reject(error);
          else q.resolve();
        });
      },
      (error: Error) => {
        for (const q of queued) q.reject(error);
      },
    );
    this.#inFlight.add(exec);
    void exec.finally(() => this.#inFlight.delete(exec));
  }
}
