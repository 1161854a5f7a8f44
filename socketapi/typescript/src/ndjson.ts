// Line and NDJSON readers over a byte stream: the plumbing of every
// streamed answer (GET /v1/events, logs with follow, and the progress
// lines of ensure and image pull once the agent serves them).

import { StringDecoder } from "node:string_decoder";
import { AgentError } from "./errors.js";

/**
 * lines yields the lines of a stream of bytes (or strings), without their
 * "\n" (or "\r\n"), decoding UTF-8 across chunk boundaries. A last line
 * without a newline is yielded too.
 */
export async function* lines(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<string, void, undefined> {
  const decoder = new StringDecoder("utf8");
  let buf = "";
  for await (const chunk of source) {
    buf += typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer);
    let start = 0;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n", start)) {
      yield trimCR(buf.slice(start, nl));
      start = nl + 1;
    }
    buf = buf.slice(start);
  }
  buf += decoder.end();
  if (buf !== "") yield trimCR(buf);
}

function trimCR(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/**
 * ndjson yields one value per non-blank line of a stream of
 * newline-delimited JSON. A line that is not JSON is an AgentError of
 * code bad_response.
 */
export async function* ndjson<T>(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<T, void, undefined> {
  for await (const line of lines(source)) {
    if (line.trim() === "") continue;
    let v: T;
    try {
      v = JSON.parse(line) as T;
    } catch (err) {
      throw new AgentError("bad_response", 0, `bad NDJSON line: ${line.length > 200 ? line.slice(0, 200) + "..." : line}`, { cause: err });
    }
    yield v;
  }
}
