// A minimal HTTP/1.1 client on node:net, for the gateway benchmark's floor proxies only
// (bench/raw-proxy.ts, bench/hybrid-proxy.ts): POST one body, read one answer, over kept-alive
// sockets, with a small response parser of its own. It measures what node:http's ClientRequest/Agent
// costs a proxied call (docs/benchmarks.md, hybrid-proxy vs node-proxy). The gateway itself forwards
// with node:http: a hand-written parser facing operator-run endpoints is not worth ~0.07 ms a call,
// and node:http's Agent caps sockets per node. It speaks what a node agent answers: a status line,
// headers, and a body framed by Content-Length, chunked transfer coding, or the connection's close;
// 1xx interim answers are skipped. Anything else, an answer over the size limit, or bytes after the
// answer, fails the request (the socket is never reused then).
// Errors: a connection error keeps its code (ECONNREFUSED…); a socket closed before the answer
// ended is ECONNRESET, marked `staleSocket` when it was a kept-alive socket that had read nothing
// of this answer (the node closed it while idle: safe to send again); a timeout is
// `no answer within <ms> ms`.
import { connect, type Socket } from "node:net";

export interface Http1Answer {
  status: number;
  body: Buffer;
}

export interface Http1Target {
  hostname: string;
  port: number;
  /** The Host header's value. */
  host: string;
}

/** Thrown for an answer this client will not read (malformed, too large, unsupported framing). */
export class Http1ProtocolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Http1ProtocolError";
  }
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE = 1024;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: |$)/;
const DIGITS = /^\d{1,15}$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,8})(?:[ \t]*;.*)?$/;

type Framing = { kind: "length"; left: number } | { kind: "chunked" } | { kind: "close" };

/** Reads one answer off a socket's bytes, fed as they come. */
class AnswerParser {
  readonly #maxBytes: number;
  #carry: Buffer = Buffer.alloc(0);
  #phase: "head" | "length" | "size" | "data" | "data-end" | "trailer" | "close" | "done" = "head";
  #status = 0;
  #parts: Buffer[] = [];
  #size = 0;
  #chunkLeft = 0;
  #framing: Framing = { kind: "close" };
  /** The server asked to close the connection, or the body ends with it. */
  closeAfter = false;
  /** Any byte of this answer was seen. */
  started = false;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get done(): boolean {
    return this.#phase === "done";
  }

  /** True when the answer's body is read to the connection's close. */
  get readsToClose(): boolean {
    return this.#phase === "close";
  }

  answer(): Http1Answer {
    return { status: this.#status, body: this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts) };
  }

  #take(bytes: Buffer): void {
    this.#size += bytes.length;
    if (this.#size > this.#maxBytes) throw new Http1ProtocolError(`answer larger than ${this.#maxBytes} bytes`);
    this.#parts.push(bytes);
  }

  /** Feeds bytes; throws Http1ProtocolError; after `done`, leftover bytes are an error. */
  feed(chunk: Buffer): void {
    this.started = true;
    let buf = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    this.#carry = Buffer.alloc(0);
    while (buf.length > 0) {
      switch (this.#phase) {
        case "done":
          throw new Http1ProtocolError("bytes after the answer");
        case "head": {
          const end = buf.indexOf(HEAD_END);
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw new Http1ProtocolError("answer head too large");
            this.#carry = buf;
            return;
          }
          this.#head(buf.toString("latin1", 0, end));
          buf = buf.subarray(end + 4);
          break;
        }
        case "length": {
          const f = this.#framing as { left: number };
          const n = Math.min(f.left, buf.length);
          this.#take(buf.subarray(0, n));
          f.left -= n;
          buf = buf.subarray(n);
          if (f.left === 0) this.#phase = "done";
          break;
        }
        case "close":
          this.#take(buf);
          return;
        case "size": {
          const end = buf.indexOf(CRLF);
          if (end < 0) {
            if (buf.length > MAX_CHUNK_LINE) throw new Http1ProtocolError("chunk size line too long");
            this.#carry = buf;
            return;
          }
          const match = CHUNK_SIZE.exec(buf.toString("latin1", 0, end));
          if (match === null) throw new Http1ProtocolError("malformed chunk size");
          this.#chunkLeft = parseInt(match[1]!, 16);
          this.#phase = this.#chunkLeft === 0 ? "trailer" : "data";
          buf = buf.subarray(end + 2);
          break;
        }
        case "data": {
          const n = Math.min(this.#chunkLeft, buf.length);
          this.#take(buf.subarray(0, n));
          this.#chunkLeft -= n;
          buf = buf.subarray(n);
          if (this.#chunkLeft === 0) this.#phase = "data-end";
          break;
        }
        case "data-end": {
          if (buf.length < 2) {
            this.#carry = buf;
            return;
          }
          if (buf[0] !== 0x0d || buf[1] !== 0x0a) throw new Http1ProtocolError("chunk not followed by CRLF");
          buf = buf.subarray(2);
          this.#phase = "size";
          break;
        }
        case "trailer": {
          const end = buf.indexOf(CRLF);
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw new Http1ProtocolError("trailer too large");
            this.#carry = buf;
            return;
          }
          if (end === 0) this.#phase = "done";
          buf = buf.subarray(end + 2);
          break;
        }
      }
    }
  }

  #head(text: string): void {
    const lines = text.split("\r\n");
    const status = STATUS_LINE.exec(lines[0]!);
    if (status === null) throw new Http1ProtocolError("malformed status line");
    const code = Number(status[1]);
    if (code >= 100 && code < 200) return; // an interim answer: the real one follows
    this.#status = code;
    let length: number | undefined;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Http1ProtocolError("malformed header line");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") {
        if (!DIGITS.test(value)) throw new Http1ProtocolError("malformed content-length");
        if (length !== undefined && length !== Number(value))
          throw new Http1ProtocolError("conflicting content-length");
        length = Number(value);
      } else if (name === "transfer-encoding") {
        if (value.toLowerCase() !== "chunked") throw new Http1ProtocolError(`unsupported transfer-encoding ${value}`);
        chunked = true;
      } else if (
        name === "connection" &&
        value
          .toLowerCase()
          .split(/\s*,\s*/)
          .includes("close")
      ) {
        this.closeAfter = true;
      }
    }
    if (chunked && length !== undefined) throw new Http1ProtocolError("both content-length and chunked");
    if (code === 204 || code === 304) {
      this.#phase = "done";
    } else if (chunked) {
      this.#phase = "size";
    } else if (length !== undefined) {
      if (length > this.#maxBytes) throw new Http1ProtocolError(`answer larger than ${this.#maxBytes} bytes`);
      this.#framing = { kind: "length", left: length };
      this.#phase = length === 0 ? "done" : "length";
    } else {
      this.#phase = "close";
      this.closeAfter = true;
    }
  }
}

/** Kept-alive sockets per target, each carrying one request at a time. */
export class Http1Pool {
  readonly #idle = new Map<string, Socket[]>();
  readonly #maxIdlePerTarget: number;

  constructor(options: { maxIdlePerTarget?: number } = {}) {
    this.#maxIdlePerTarget = options.maxIdlePerTarget ?? 256;
  }

  #open(key: string, target: Http1Target): Socket {
    const socket = connect({ host: target.hostname, port: target.port, noDelay: true });
    // While idle nobody else listens: an idle socket's error must not throw, and a closed one
    // leaves the idle list. A request in flight has its own listeners as well.
    socket.on("error", () => undefined);
    socket.on("close", () => {
      const list = this.#idle.get(key);
      const i = list?.indexOf(socket) ?? -1;
      if (i >= 0) list!.splice(i, 1);
    });
    return socket;
  }

  #takeIdle(key: string): Socket | undefined {
    const list = this.#idle.get(key);
    for (let socket = list?.pop(); socket !== undefined; socket = list?.pop()) {
      if (!socket.destroyed && socket.readyState === "open") return socket;
    }
    return undefined;
  }

  #release(key: string, socket: Socket): void {
    let list = this.#idle.get(key);
    if (list === undefined) {
      list = [];
      this.#idle.set(key, list);
    }
    if (list.length >= this.#maxIdlePerTarget) {
      socket.destroy();
      return;
    }
    socket.unref();
    list.push(socket);
  }

  /**
   * POSTs `body` (JSON) to `path` on `target` and reads the answer, or rejects (see the file's
   * head for the errors). The answer is read whole, up to `maxAnswerBytes`.
   */
  post(
    target: Http1Target,
    path: string,
    body: string,
    timeoutMs: number,
    maxAnswerBytes: number,
  ): Promise<Http1Answer> {
    const key = `${target.hostname}:${target.port}`;
    const reused = this.#takeIdle(key);
    const socket = reused ?? this.#open(key, target);
    socket.ref();
    const parser = new AnswerParser(maxAnswerBytes);
    return new Promise<Http1Answer>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        socket.off("end", onEnd);
        if (error !== undefined) {
          socket.destroy();
          reject(error);
          return;
        }
        if (parser.closeAfter) socket.destroy();
        else this.#release(key, socket);
        resolve(parser.answer());
      };
      const onData = (chunk: Buffer) => {
        try {
          parser.feed(chunk);
        } catch (error) {
          finish(error as Error);
          return;
        }
        if (parser.done) finish(undefined);
      };
      const closedEarly = () => {
        if (parser.readsToClose) {
          finish(undefined);
          return;
        }
        const error = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
        finish(reused !== undefined && !parser.started ? Object.assign(error, { staleSocket: true }) : error);
      };
      const onError = (error: Error & { code?: string }) => {
        if (reused !== undefined && !parser.started && (error.code === "ECONNRESET" || error.code === "EPIPE")) {
          finish(Object.assign(error, { staleSocket: true }));
        } else {
          finish(error);
        }
      };
      const onEnd = () => closedEarly();
      const onClose = () => closedEarly();
      const deadline = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      socket.on("data", onData);
      socket.on("error", onError);
      socket.on("end", onEnd);
      socket.on("close", onClose);
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`,
      );
    });
  }

  /** Closes every idle socket. */
  close(): void {
    for (const list of this.#idle.values()) for (const socket of list) socket.destroy();
    this.#idle.clear();
  }
}
