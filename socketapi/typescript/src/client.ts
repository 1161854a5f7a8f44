import * as http from "node:http";
import { AgentError, errorFromResponse } from "./errors.js";
import { lines, ndjson } from "./ndjson.js";
import { AgentStream } from "./stream.js";
import { callAny, callJSON, callProgress, callText, openStream, type CallOptions, type TransportConfig } from "./transport.js";
import type { AgentEvent, ExecRequest, ExecResult, Health, ImportRequest, ImportResult, Instance, InstanceSpec, InstanceState, PruneRequest, PruneResult, PullProgress, PullResult } from "./types.js";

/** The agent's socket when neither the socketPath option nor $ZAKI_SOCKET names one. */
export const DEFAULT_SOCKET = "/run/zaki-agent/agent.sock";
/** The environment variable that names the agent's socket. */
export const SOCKET_ENV = "ZAKI_SOCKET";
/** The default of ClientOptions.timeoutMs: five minutes, room for an ensure that pulls its image. */
export const DEFAULT_TIMEOUT_MS = 300_000;

/** Options of an AgentClient. */
export interface ClientOptions {
  /** The agent's socket; default $ZAKI_SOCKET, then /run/zaki-agent/agent.sock. */
  socketPath?: string;
  /** Default limit of every call in milliseconds (0: none); each call may set its own. */
  timeoutMs?: number;
  /** Keep connections open between calls (default true). Ignored when agent is given. */
  keepAlive?: boolean;
  /** The http.Agent that carries the calls, instead of the client's own. */
  agent?: http.Agent;
  /** Sent as User-Agent with every call. */
  userAgent?: string;
  /** Extra headers sent with every call. */
  headers?: Record<string, string>;
}

/** Options of list. */
export interface ListOptions extends CallOptions {
  /** Only the instances in this state. */
  state?: InstanceState;
}

/** Options of ensure. */
export interface EnsureOptions extends CallOptions {
  /**
   * Apply a changed spec now, even to an instance in use (hot), which
   * would otherwise keep running, marked stale, until its next cold ensure.
   */
  force?: boolean;
  /**
   * Called with each progress line of the image pull the ensure waits for
   * (the agent streams them on the call itself: Accept:
   * application/x-ndjson). An exception it throws is ignored.
   */
  onProgress?: (progress: PullProgress) => void;
}

/** Options of pullImage. */
export interface PullOptions extends CallOptions {
  /** Called with each progress line of the pull; an exception it throws is ignored. */
  onProgress?: (progress: PullProgress) => void;
}

/** Options of exec. */
export interface ExecOptions extends CallOptions {
  /** How long the command may run, in seconds (fractions allowed); the agent's default (30) when left out. */
  timeoutSeconds?: number;
}

/** Options of remove. */
export interface RemoveOptions extends CallOptions {
  /** Delete the user's data too. */
  purge?: boolean;
}

/** Options of logs and followLogs. */
export interface LogsOptions extends CallOptions {
  /** The last N lines (0 to 1000000; 0: none of those already written), or "all" (the default). */
  tail?: number | "all";
  /**
   * Only the lines written from this time on: a Date, or a string in
   * `docker logs --since`' forms (an RFC 3339 time, Unix seconds, or a
   * duration back from now such as "10m" or "2h").
   */
  since?: Date | string;
  /** Prefix each line with the time it was written (RFC 3339, UTC) and a space. */
  timestamps?: boolean;
}

/**
 * A client of the zaki-agent API over its Unix socket: one method per
 * route, each taking an AbortSignal and a timeout, every failure an
 * AgentError. Connections are kept alive between calls; close() releases
 * them (idle ones never keep the process alive).
 */
export class AgentClient {
  /** The socket the client reaches. */
  readonly socketPath: string;
  /** The http.Agent that carries the calls. */
  readonly httpAgent: http.Agent;
  readonly #t: TransportConfig;
  readonly #ownAgent: boolean;

  constructor(options: ClientOptions = {}) {
    this.socketPath = options.socketPath || process.env[SOCKET_ENV] || DEFAULT_SOCKET;
    this.#ownAgent = !options.agent;
    // Idle connections are closed after 30 s, before the agent's own
    // idle limit (2 min) can close one under a new call.
    this.httpAgent = options.agent ?? new http.Agent({ keepAlive: options.keepAlive ?? true, timeout: 30_000 });
    const headers: Record<string, string> = { "User-Agent": options.userAgent ?? "zaki-agent-client-node", ...options.headers };
    this.#t = { socketPath: this.socketPath, agent: this.httpAgent, headers, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS };
  }

  /**
   * The agent's health. When the runtime is unreachable (503) it throws an
   * AgentError of code runtime_unavailable whose body is the Health.
   */
  async health(opts?: CallOptions): Promise<Health> {
    const { status, statusText, text } = await callAny(this.#t, { method: "GET", path: "/v1/health" }, opts);
    if (status === 200 || status === 503) {
      // Both answers are the Health document.
      let h: Health | undefined;
      try {
        h = JSON.parse(text) as Health;
      } catch {
        h = undefined;
      }
      if (h && typeof h.status === "string") {
        if (status === 200) return h;
        const why = h.runtime?.error ? `: ${h.runtime.error}` : "";
        throw new AgentError("runtime_unavailable", 503, `runtime unavailable${why}`, { body: h });
      }
    }
    if (status === 200) throw new AgentError("bad_response", 0, `GET /v1/health: answer is not a health document: ${text.slice(0, 200)}`);
    throw errorFromResponse(status, statusText, text);
  }

  /** The instances, by user ID; all of them, or those in opts.state. */
  async list(opts: ListOptions = {}): Promise<Instance[]> {
    return callJSON<Instance[]>(this.#t, { method: "GET", path: "/v1/instances", query: { state: opts.state } }, opts);
  }

  /** The user's instance (not_found when there is none). */
  async get(userId: string, opts?: CallOptions): Promise<Instance> {
    return callJSON<Instance>(this.#t, { method: "GET", path: instancePath(userId) }, opts);
  }

  /**
   * Makes the user's instance exist, run and accept connections, and
   * returns it; its outcome says what that took (created, recreated,
   * started or reused). An ensure the caller gives up on (signal,
   * timeout) still runs to its end in the agent; the next one finds it.
   */
  async ensure(userId: string, spec: InstanceSpec = {}, opts: EnsureOptions = {}): Promise<Instance> {
    const { onProgress, force, ...call } = opts;
    const req = { method: "PUT", path: instancePath(userId), query: { force: force ? "true" : undefined }, body: spec };
    if (!onProgress) return callJSON<Instance>(this.#t, req, call);
    return callProgress<Instance, PullProgress>(this.#t, req, "instance", onProgress, call);
  }

  /**
   * Pulls image now, even when the engine has it: a tag that moved makes
   * the instances made from it stale (made anew at their next cold
   * ensure, or now with ensure's force). The image must be one the
   * agent's config allows (forbidden otherwise); a pull the registry
   * refuses is pull_failed, with the engine's reason.
   */
  async pullImage(image: string, opts: PullOptions = {}): Promise<PullResult> {
    const { onProgress, ...call } = opts;
    const req = { method: "POST", path: "/v1/images/pull", body: { image } };
    if (!onProgress) return callJSON<PullResult>(this.#t, req, call);
    return callProgress<PullResult, PullProgress>(this.#t, req, "pull", onProgress, call);
  }

  /** Marks the user's instance as used now (pushes idle pruning back). */
  async touch(userId: string, opts?: CallOptions): Promise<Instance> {
    return callJSON<Instance>(this.#t, { method: "POST", path: instancePath(userId, "touch") }, opts);
  }

  /** Stops the user's instance, keeping its container. */
  async stop(userId: string, opts?: CallOptions): Promise<Instance> {
    return callJSON<Instance>(this.#t, { method: "POST", path: instancePath(userId, "stop") }, opts);
  }

  /** Restarts the user's instance and waits until it is ready again. */
  async restart(userId: string, opts?: CallOptions): Promise<Instance> {
    return callJSON<Instance>(this.#t, { method: "POST", path: instancePath(userId, "restart") }, opts);
  }

  /** Removes the user's container and registry entry; with purge, the user's data too. */
  async remove(userId: string, opts: RemoveOptions = {}): Promise<void> {
    await callJSON<void>(this.#t, { method: "DELETE", path: instancePath(userId), query: { purge: opts.purge ? "true" : undefined } }, opts);
  }

  /** The container's output so far (the last opts.tail lines). */
  async logs(userId: string, opts: LogsOptions = {}): Promise<string> {
    return callText(this.#t, { method: "GET", path: instancePath(userId, "logs"), query: logsQuery(opts) }, opts);
  }

  /**
   * Follows the container's output: resolves once the agent answered
   * (errors such as not_found are thrown here), then yields it line by
   * line as it comes, until the container stops, the signal fires or the
   * stream is closed.
   */
  async followLogs(userId: string, opts: LogsOptions = {}): Promise<AgentStream<string>> {
    const { call, res } = await openStream(this.#t, { method: "GET", path: instancePath(userId, "logs"), query: { ...logsQuery(opts), follow: "true" } }, opts);
    return new AgentStream(call, res, lines);
  }

  /**
   * Runs cmd (argv, no shell) in the user's running instance, as the
   * container's user, without a TTY or stdin, and returns its exit code and
   * output (each stream cut at the agent's cap: truncated says so). A
   * command that fails is no error: its exitCode says so. Errors: conflict
   * when the instance is not running, timeout when the command outlived
   * opts.timeoutSeconds (it is killed), too_many_requests past the agent's
   * bound on execs at once. The call's own timeout is raised to outlast the
   * command's.
   */
  async exec(userId: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const body: ExecRequest = { cmd };
    if (opts.timeoutSeconds !== undefined) body.timeoutSeconds = opts.timeoutSeconds;
    const call: CallOptions = { ...opts };
    const base = this.#t.timeoutMs;
    if (opts.timeoutMs === undefined && opts.timeoutSeconds !== undefined && base > 0) {
      call.timeoutMs = Math.max(base, opts.timeoutSeconds * 1000 + 30_000);
    }
    return callJSON<ExecResult>(this.#t, { method: "POST", path: instancePath(userId, "exec"), body }, call);
  }

  /**
   * Brings the platform's existing users over (POST /v1/import): copies
   * each user's data dir from the router's layout into the agent's
   * (the source is only read), keeps the user's port when it is free and
   * replaces the router's unlabelled container with an instance. With
   * req.dryRun it only says what it would do; a user imported before is
   * reported "exists". The call's timeout is raised to the agent's own
   * bound on a call (15 minutes) unless opts.timeoutMs is given.
   */
  async importUsers(req: ImportRequest = {}, opts: CallOptions = {}): Promise<ImportResult> {
    const call: CallOptions = { ...opts };
    if (opts.timeoutMs === undefined && this.#t.timeoutMs > 0) call.timeoutMs = Math.max(this.#t.timeoutMs, 16 * 60_000);
    return callJSON<ImportResult>(this.#t, { method: "POST", path: "/v1/import", body: req }, call);
  }

  /** Runs a pruning pass now (with req.dryRun, only says what it would do). */
  async prune(req: PruneRequest = {}, opts?: CallOptions): Promise<PruneResult> {
    return callJSON<PruneResult>(this.#t, { method: "POST", path: "/v1/prune", body: req }, opts);
  }

  /**
   * Follows the lifecycle events. The agent has subscribed this client
   * when the promise resolves: every event after that is seen. The
   * iteration ends cleanly when the signal fires or the stream is closed.
   */
  async events(opts?: CallOptions): Promise<AgentStream<AgentEvent>> {
    const { call, res } = await openStream(this.#t, { method: "GET", path: "/v1/events", accept: "application/x-ndjson" }, opts);
    return new AgentStream(call, res, ndjson<AgentEvent>);
  }

  /** The agent's OpenAPI document (GET /v1/openapi.json). */
  async openapi(opts?: CallOptions): Promise<Record<string, unknown>> {
    return callJSON<Record<string, unknown>>(this.#t, { method: "GET", path: "/v1/openapi.json" }, opts);
  }

  /** The agent's metrics, in the Prometheus text format. */
  async metrics(opts?: CallOptions): Promise<string> {
    return callText(this.#t, { method: "GET", path: "/metrics" }, opts);
  }

  /** Closes the client's kept-alive connections (not those of an agent passed in). */
  close(): void {
    if (this.#ownAgent) this.httpAgent.destroy();
  }
}

function instancePath(userId: string, action?: string): string {
  if (typeof userId !== "string" || userId === "") throw new AgentError("invalid_argument", 0, "a user ID is required");
  return "/v1/instances/" + encodeURIComponent(userId) + (action ? "/" + action : "");
}

function logsQuery(opts: LogsOptions): Record<string, string | undefined> {
  const since = opts.since instanceof Date ? opts.since.toISOString() : opts.since;
  return {
    tail: opts.tail === undefined ? undefined : String(opts.tail),
    since,
    timestamps: opts.timestamps === undefined ? undefined : String(opts.timestamps),
  };
}
