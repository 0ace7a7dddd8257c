// Group commit: calls made while a flush is running are gathered and written by the next flush in
// one statement or transaction. One flush is in flight at a time, so under load the batches grow
// and the per-receipt database cost falls; at low load a batch is one item and adds no wait.

/** Returns a function whose calls are flushed together; `flush` returns one result per item, in order. */
export function batcher<T, R>(flush: (items: T[]) => Promise<R[]>, maxBatch = 256): (item: T) => Promise<R> {
  let queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  let running = false;

  const run = async (): Promise<void> => {
    running = true;
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      try {
        const results = await flush(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (error) {
        for (const b of batch) b.reject(error);
      }
    }
    running = false;
  };

  return (item: T) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (!running) setImmediate(() => void run());
      running = true;
    });
}
