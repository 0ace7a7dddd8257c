// Redis writes that no answer waits for (call statistics, and any other per-call record), queued
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

export class RedisWriteBatch {
  readonly #redis: Redis;
  #queue: Queued[] = [];
  #scheduled = false;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /**
   * Queues `write` (which must add exactly one command); resolves once Redis ran it, rejects
   * with that command's error.
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
    const pipeline = this.#redis.pipeline();
    for (const q of queued) q.write(pipeline);
    pipeline.exec().then(
      (results) => {
        queued.forEach((q, i) => {
          const error = results?.[i]?.[0];
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
