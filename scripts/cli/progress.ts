// Waiting made visible: a one-line spinner on stderr while the CLI waits for something slow (a
// transaction to be mined, a gateway to answer). Only on a terminal and never with --json, so
// scripts and pipes see exactly what they saw before.
import type { PublicClient } from "viem";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export interface Progress {
  /** Shows `text` with a spinner and the seconds waited until the returned function is called. */
  wait(text: string): () => void;
}

/** No output at all: --json, or stderr is not a terminal. */
export const SILENT: Progress = { wait: () => () => undefined };

/** A spinner on `stream` when it is a terminal and `json` is false, else SILENT. */
export function createProgress(json: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (json || !stream.isTTY) return SILENT;
  return {
    wait(text) {
      const started = Date.now();
      let frame = 0;
      const draw = () => {
        const seconds = Math.floor((Date.now() - started) / 1000);
        stream.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${text} (${seconds}s)`);
      };
      draw();
      const timer = setInterval(draw, 100);
      return () => {
        clearInterval(timer);
        stream.write("\r\x1b[2K");
      };
    },
  };
}

/** "0x1234ab…cdef": a hash short enough for one terminal line. */
export function shortHash(hash: string): string {
  return hash.length <= 14 ? hash : `${hash.slice(0, 8)}…${hash.slice(-4)}`;
}

/**
 * `publicClient` with a spinner around every wait for a receipt ("waiting for transaction
 * 0x12ab…cdef to be mined"), so each sdk call that sends a transaction shows its hash while it waits.
 */
export function withTransactionProgress(publicClient: PublicClient, progress: Progress): PublicClient {
  if (progress === SILENT) return publicClient;
  return publicClient.extend((client) => ({
    waitForTransactionReceipt: async (args: Parameters<PublicClient["waitForTransactionReceipt"]>[0]) => {
      const done = progress.wait(`waiting for transaction ${shortHash(args.hash)} to be mined`);
      try {
        return await client.waitForTransactionReceipt(args);
      } finally {
        done();
      }
    },
  })) as unknown as PublicClient;
}
