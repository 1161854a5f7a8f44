// The API's types, by the names the README and the Go client use. Every
// one of them is taken from the types generated from socketapi/openapi.json
// (src/generated/openapi.ts, `npm run generate`), never written by hand.

import type { components, operations } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** What a caller asks for (the body of an ensure); every field optional. */
export type InstanceSpec = Schemas["InstanceSpec"];
/** Limits a caller may lower, never raise past the configured ceilings. */
export type Resources = Schemas["Resources"];
/** One user's instance. */
export type Instance = Schemas["Instance"];
/** running, stopped or missing. */
export type InstanceState = Instance["state"];
/** What an ensure took: reused, started, created or recreated. */
export type Outcome = NonNullable<Instance["outcome"]>;
/** One lifecycle event, as GET /v1/events streams them. */
export type AgentEvent = Schemas["Event"];
/** The type of an event (instance.ensured, image.pull, ...). */
export type EventType = AgentEvent["type"];
/** The body of POST /v1/instances/{userId}/exec. */
export type ExecRequest = Schemas["ExecRequest"];
/** What an exec'd command left: exit code, output, whether it was cut. */
export type ExecResult = Schemas["ExecResult"];
/** The body of POST /v1/prune; thresholds left out come from the config. */
export type PruneRequest = Schemas["PruneRequest"];
/** What a pruning pass stopped and removed (or, dry, would have). */
export type PruneResult = Schemas["PruneResult"];
/** One instance a pruning pass acted on. */
export type PruneItem = Schemas["PruneItem"];
/** The agent's view of itself, its runtime and the engine. */
export type Health = Schemas["Health"];
/** The body of every error answer: {"error": {"code", "message"}}. */
export type ErrorBody = Schemas["Error"];
/** The error codes the API answers with. */
export type ApiErrorCode = ErrorBody["error"]["code"];
/** The query of GET /v1/instances. */
export type ListQuery = NonNullable<operations["listInstances"]["parameters"]["query"]>;
/** The query of GET /v1/instances/{userId}/logs. */
export type LogsQuery = NonNullable<operations["instanceLogs"]["parameters"]["query"]>;
/** One progress line of an image pull (ensure and pullImage with onProgress). */
export type PullProgress = Schemas["PullProgress"];
/** What POST /v1/images/pull did. */
export type PullResult = Schemas["PullResult"];
/** The body of POST /v1/import: where the router's users are, and what to bring over. */
export type ImportRequest = Schemas["ImportRequest"];
/** What an import did (or, dry, would do), user by user. */
export type ImportResult = Schemas["ImportResult"];
/** One user of an import. */
export type ImportItem = Schemas["ImportItem"];
