/**
 * @zaki-platform/agent-client: the Node.js client of the zaki-agent API
 * (HTTP/1.1 + JSON over the agent's Unix socket). No runtime dependency:
 * node:http alone.
 *
 * @example
 * import { AgentClient } from "@zaki-platform/agent-client";
 * const agent = new AgentClient(); // $ZAKI_SOCKET, or /run/zaki-agent/agent.sock
 * const inst = await agent.ensure("user-1042", { env: { OPENCLAW_GATEWAY_TOKEN: token } });
 * console.log(inst.url, inst.outcome);
 */
export { AgentClient, DEFAULT_SOCKET, DEFAULT_TIMEOUT_MS, SOCKET_ENV } from "./client.js";
export type { ClientOptions, EnsureOptions, ExecOptions, ListOptions, LogsOptions, PullOptions, RemoveOptions } from "./client.js";
export { AgentError, isAgentError } from "./errors.js";
export type { AgentErrorCode } from "./errors.js";
export { lines, ndjson } from "./ndjson.js";
export { AgentStream } from "./stream.js";
export type { CallOptions } from "./transport.js";
export type * from "./types.js";
export type { components, operations, paths } from "./generated/openapi.js";
