import type { ApiErrorCode } from "./types.js";

/**
 * The codes an {@link AgentError} carries: the API's own (the `code` of
 * the agent's error envelope, with the HTTP status in `status`), and five
 * that arise in the client (`status` 0):
 *
 * - `unreachable`: no connection to the socket (no agent, wrong path, no permission);
 * - `disconnected`: the connection broke before the answer was complete;
 * - `bad_response`: the answer is not what the API promises (e.g. not JSON);
 * - `timeout`: the call's `timeoutMs` ran out (a 504 from the agent has `status` 504);
 * - `aborted`: the caller's `AbortSignal` fired (its reason is the error's `cause`).
 *
 * A newer agent may answer with a code this list does not name yet.
 */
export type AgentErrorCode =
  | ApiErrorCode
  | "unreachable"
  | "disconnected"
  | "bad_response"
  | "aborted"
  | (string & {});

/**
 * Every error the client throws: an error answer of the agent
 * (`code`, `status` and `message` of its envelope) or a failure of the
 * call itself (`status` 0, see {@link AgentErrorCode}).
 */
export class AgentError extends Error {
  /** The envelope's code, or one of the client's own (see AgentErrorCode). */
  readonly code: AgentErrorCode;
  /** The HTTP status; 0 when the agent did not answer. */
  readonly status: number;
  /**
   * The decoded body of an error answer that carries a document rather
   * than an envelope (a 503 from GET /v1/health: the Health).
   */
  declare readonly body?: unknown;

  constructor(code: AgentErrorCode, status: number, message: string, options?: { cause?: unknown; body?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AgentError";
    this.code = code;
    this.status = status;
    if (options?.body !== undefined) this.body = options.body;
  }
}

/**
 * Whether err is an AgentError (of the given code, when one is given).
 * It also recognises one thrown by another copy of this package (the ESM
 * and the CommonJS build side by side), where `instanceof` would not.
 */
export function isAgentError(err: unknown, code?: AgentErrorCode): err is AgentError {
  if (!(err instanceof AgentError)) {
    if (typeof err !== "object" || err === null || (err as Error).name !== "AgentError") return false;
    if (typeof (err as AgentError).code !== "string" || typeof (err as AgentError).status !== "number") return false;
  }
  return code === undefined || (err as AgentError).code === code;
}

/** The code the API pairs with a status, for an answer without an envelope. */
const codeOfStatus: Record<number, ApiErrorCode> = {
  400: "invalid_argument",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "too_large",
  500: "internal",
  503: "runtime_unavailable",
  504: "timeout",
};

/** errorFromResponse builds the error of a non-2xx answer from its body. */
export function errorFromResponse(status: number, statusText: string, body: string): AgentError {
  try {
    const eb = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    const e = eb?.error;
    if (e && typeof e.code === "string" && e.code !== "") {
      return new AgentError(e.code, status, typeof e.message === "string" ? e.message : e.code);
    }
  } catch {
    // not our envelope: fall through
  }
  let msg = `unexpected response ${status} ${statusText}`.trimEnd();
  if (body.length > 0 && body.length < 512) msg += `: ${body}`;
  return new AgentError(codeOfStatus[status] ?? "internal", status, msg);
}
