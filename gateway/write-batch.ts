// Redis writes that no answer waits for (call statistics, attempt records, kept jobs), queued
// during a call and sent after it as one pipeline: the call's own path pays no Redis round trip
// and no socket write, and a burst of calls shares one pipeline. Writes queued in the same turn
// of the event loop go out together on the next `setImmediate`, that is after the answers of
// that turn were written to their sockets.
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

export class RedisWriteBatch {
  readonly #redis: Redis;
  #queue: Queued[] = [];
  #scheduled = false;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /**
   * Queues `write` (one or more commands, kept together and in order); resolves once Redis ran
   * them, rejects with the first of their errors.
   */
  add(write: PipelinedWrite): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
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
    pipeline.exec().then(
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
  }
}
