// One HTTP/1.1 call over the agent's Unix socket: the request, its
// timeout and AbortSignal, the retry of a kept-alive connection the agent
// had just closed, and the translation of every failure into an
// AgentError. Unary calls read the whole answer; streamed calls hand the
// response on once its headers are in.

import * as http from "node:http";
import { AgentError, errorFromResponse } from "./errors.js";
import { ndjson } from "./ndjson.js";

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call; a stream being read ends cleanly. */
  signal?: AbortSignal;
  /**
   * Milliseconds the call may take, the reading of its answer included
   * (for a stream: until the agent answers); 0 means no limit. Defaults
   * to the client's timeoutMs.
   */
  timeoutMs?: number;
}

/** What a transport needs to know of its client. */
export interface TransportConfig {
  socketPath: string;
  agent: http.Agent;
  headers: Record<string, string>;
  timeoutMs: number;
}

/** One request, path already escaped. */
export interface RequestSpec {
  method: string;
  path: string;
  query?: Record<string, string | undefined>;
  /** Sent as JSON when not undefined. */
  body?: unknown;
  accept?: string;
}

/** The most a unary answer may hold. */
const maxAnswerBytes = 64 << 20;

const unreachableCodes = new Set(["ENOENT", "ECONNREFUSED", "EACCES", "EPERM", "ENOTSOCK", "ENOTDIR", "ENAMETOOLONG", "ELOOP"]);

/**
 * Call is one request in flight. It owns the timer and the abort
 * listener; fail ends it with an error, done releases them.
 */
export class Call {
  readonly what: string;
  failure?: AgentError;
  private req?: http.ClientRequest;
  private res?: http.IncomingMessage;
  private timer?: NodeJS.Timeout;
  private unlisten?: () => void;
  private finished = false;

  constructor(
    private readonly t: TransportConfig,
    private readonly spec: RequestSpec,
    opts: CallOptions,
  ) {
    this.what = `${spec.method} ${spec.path}`;
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => this.fail(abortError(this.what, signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      this.unlisten = () => signal.removeEventListener("abort", onAbort);
      if (signal.aborted) this.failure = abortError(this.what, signal.reason);
    }
    const ms = opts.timeoutMs ?? t.timeoutMs;
    if (ms > 0 && !this.failure) {
      this.timer = setTimeout(() => this.fail(new AgentError("timeout", 0, `${this.what}: no answer within ${ms} ms`)), ms);
    }
  }

  /** fail ends the call with err (the first failure wins). */
  fail(err: AgentError): void {
    if (this.finished || this.failure) return;
    this.failure = err;
    this.clearTimer();
    this.res?.destroy(err);
    this.req?.destroy(err);
  }

  /** clearTimer stops the timeout (a stream is read for as long as it lasts). */
  clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** done releases the timer and the abort listener. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimer();
    this.unlisten?.();
  }

  /** destroy closes the connection of an answer not read to its end. */
  destroy(): void {
    if (this.res && !this.res.complete) this.res.destroy();
    this.done();
  }

  /** response sends the request and resolves once the answer's headers are in. */
  async response(): Promise<http.IncomingMessage> {
    if (this.failure) {
      this.done();
      throw this.failure;
    }
    const body = this.spec.body === undefined ? undefined : Buffer.from(JSON.stringify(this.spec.body));
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          this.res = await this.send(body);
          // Errors of the answer reach its reader; none may go unheard.
          this.res.on("error", () => {});
          return this.res;
        } catch (err) {
          if (this.failure) throw this.failure;
          const e = err as NodeJS.ErrnoException & { reused?: boolean };
          // A kept-alive connection the agent closed as it was reused:
          // nothing reached the agent, so the call is sent once more.
          if (attempt === 0 && e.reused && (e.code === "ECONNRESET" || e.code === "EPIPE")) continue;
          throw this.translate(e);
        }
      }
    } catch (err) {
      this.done();
      throw err;
    }
  }

  private send(body: Buffer | undefined): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...this.t.headers };
    if (this.spec.accept) headers["Accept"] = this.spec.accept;
    if (body) headers["Content-Type"] = "application/json";
    if (body || this.spec.method !== "GET") headers["Content-Length"] = String(body?.length ?? 0);
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.t.socketPath,
        agent: this.t.agent,
        method: this.spec.method,
        path: this.spec.path + queryString(this.spec.query),
        headers,
      });
      this.req = req;
      req.once("response", resolve);
      req.on("error", (err: NodeJS.ErrnoException & { reused?: boolean }) => {
        err.reused = req.reusedSocket;
        reject(err);
      });
      req.end(body);
    });
  }

  private translate(err: NodeJS.ErrnoException): AgentError {
    if (err instanceof AgentError) return err;
    if (err.code && unreachableCodes.has(err.code)) {
      return new AgentError("unreachable", 0, `cannot reach zaki-agent at ${this.t.socketPath}: ${err.message}`, { cause: err });
    }
    if (err.code?.startsWith("HPE_")) {
      return new AgentError("bad_response", 0, `${this.what}: malformed answer: ${err.message}`, { cause: err });
    }
    return new AgentError("disconnected", 0, `${this.what}: ${err.message}`, { cause: err });
  }

  /** text reads the whole answer (bounded), within the call's limits. */
  async text(res: http.IncomingMessage, limit = maxAnswerBytes): Promise<string> {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > limit) {
          const err = new AgentError("bad_response", 0, `${this.what}: answer larger than ${limit} bytes`);
          this.fail(err);
          throw err;
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw this.failure ?? (err instanceof AgentError ? err : this.translate(err as NodeJS.ErrnoException));
    } finally {
      this.done();
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  /**
   * check turns an answer of any status other than 2xx into an
   * AgentError (its body read), or hands the answer back.
   */
  async check(res: http.IncomingMessage): Promise<http.IncomingMessage> {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const body = await this.text(res, 1 << 20);
    throw errorFromResponse(status, res.statusMessage ?? "", body);
  }
}

function abortError(what: string, reason: unknown): AgentError {
  return new AgentError("aborted", 0, `${what}: aborted`, { cause: reason });
}

function queryString(query: RequestSpec["query"]): string {
  if (!query) return "";
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s === "" ? "" : "?" + s;
}

/** call sends a request and returns the decoded JSON answer (undefined for 204). */
export async function callJSON<T>(t: TransportConfig, spec: RequestSpec, opts: CallOptions = {}): Promise<T> {
  const c = new Call(t, { accept: "application/json", ...spec }, opts);
  const res = await c.check(await c.response());
  const text = await c.text(res);
  if (res.statusCode === 204 || text === "") return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new AgentError("bad_response", 0, `${c.what}: answer is not JSON: ${text.slice(0, 200)}`, { cause: err });
  }
}

/** callAny sends a request and returns the answer whatever its status. */
export async function callAny(t: TransportConfig, spec: RequestSpec, opts: CallOptions = {}): Promise<{ status: number; statusText: string; text: string }> {
  const c = new Call(t, { accept: "application/json", ...spec }, opts);
  const res = await c.response();
  const text = await c.text(res);
  return { status: res.statusCode ?? 0, statusText: res.statusMessage ?? "", text };
}

/** callText sends a request and returns the answer as text. */
export async function callText(t: TransportConfig, spec: RequestSpec, opts: CallOptions = {}): Promise<string> {
  const c = new Call(t, spec, opts);
  const res = await c.check(await c.response());
  return c.text(res);
}

/**
 * openStream sends a request and resolves once the agent answered 2xx;
 * from then on only the signal (or close) ends it, the timeout no longer.
 */
export async function openStream(t: TransportConfig, spec: RequestSpec, opts: CallOptions = {}): Promise<{ call: Call; res: http.IncomingMessage }> {
  const c = new Call(t, spec, opts);
  const res = await c.check(await c.response());
  c.clearTimer();
  return { call: c, res };
}

/** One line of a progress stream (Accept: application/x-ndjson on ensure and image pull). */
interface ProgressLine<P> {
  progress?: P;
  error?: { status?: number; code?: string; message?: string };
  [result: string]: unknown;
}

/**
 * callProgress sends a request that streams progress lines (Accept:
 * application/x-ndjson) and returns the value of the last line's key
 * (instance, pull). Each progress line goes to onProgress (an exception
 * it throws is ignored). An error line becomes the AgentError a plain
 * answer would have given; an answer of plain JSON is taken as the
 * result. The call's timeout covers the whole stream.
 */
export async function callProgress<T, P>(t: TransportConfig, spec: RequestSpec, key: string, onProgress: (p: P) => void, opts: CallOptions = {}): Promise<T> {
  const c = new Call(t, { ...spec, accept: "application/x-ndjson" }, opts);
  const res = await c.check(await c.response());
  if (!String(res.headers["content-type"] ?? "").includes("ndjson")) {
    const text = await c.text(res);
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new AgentError("bad_response", 0, `${c.what}: answer is not JSON: ${text.slice(0, 200)}`, { cause: err });
    }
  }
  try {
    for await (const line of ndjson<ProgressLine<P>>(res as AsyncIterable<Buffer>)) {
      if (line.progress !== undefined) {
        try {
          onProgress(line.progress);
        } catch {
          // the caller's bug; progress goes on
        }
      } else if (line.error !== undefined) {
        const e = line.error;
        throw new AgentError(e.code || "internal", e.status ?? 500, e.message || e.code || "error");
      } else if (line[key] !== undefined) {
        return line[key] as T;
      }
    }
    throw new AgentError("disconnected", 0, `${c.what}: the stream ended before its result`);
  } catch (err) {
    if (c.failure) throw c.failure;
    if (err instanceof AgentError) throw err;
    throw new AgentError("disconnected", 0, `${c.what}: stream broke: ${(err as Error).message}`, { cause: err });
  } finally {
    c.destroy();
  }
}
