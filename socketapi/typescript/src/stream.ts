import type * as http from "node:http";
import { AgentError } from "./errors.js";
import type { Call } from "./transport.js";

/**
 * A streamed answer of the agent (events, followed logs), read with
 * `for await`. The iteration ends cleanly, without an error, when the
 * call's AbortSignal fires, when close() is called or when the consumer
 * leaves the loop; it ends the same way when the agent ends the stream
 * (e.g. logs of a container that stopped). It throws an AgentError of
 * code disconnected when the connection breaks. A stream can be
 * iterated once; one not read to its end must be closed (or aborted),
 * or it holds its connection open.
 */
export class AgentStream<T> implements AsyncIterable<T> {
  readonly #call: Call;
  readonly #res: http.IncomingMessage;
  readonly #iter: AsyncGenerator<T, void, undefined>;
  #closed = false;

  /** @internal */
  constructor(call: Call, res: http.IncomingMessage, parse: (src: AsyncIterable<Buffer>) => AsyncGenerator<T, void, undefined>) {
    this.#call = call;
    this.#res = res;
    this.#iter = this.#iterate(parse);
  }

  async *#iterate(parse: (src: AsyncIterable<Buffer>) => AsyncGenerator<T, void, undefined>): AsyncGenerator<T, void, undefined> {
    try {
      yield* parse(this.#res as AsyncIterable<Buffer>);
    } catch (err) {
      const f = this.#call.failure;
      if (this.#closed || f?.code === "aborted") return;
      if (f) throw f;
      if (err instanceof AgentError) throw err;
      throw new AgentError("disconnected", 0, `${this.#call.what}: stream broke: ${(err as Error).message}`, { cause: err });
    } finally {
      this.#call.destroy();
    }
  }

  /** close ends the stream and its connection; an iteration in progress ends cleanly. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#res.destroy();
    this.#call.done();
  }

  /** Whether close was called or the signal fired. */
  get closed(): boolean {
    return this.#closed || this.#call.failure?.code === "aborted";
  }

  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return this.#iter;
  }
}
