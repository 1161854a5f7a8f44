// The error codes, as a real agent answers them, and the client's own.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AgentClient, AgentError, isAgentError, type Health } from "@zaki-platform/agent-client";
import { engine, eventually, removeQuietly, TestAgent, user } from "./harness.js";

const { skip } = engine();

/** fails returns the AgentError p rejects with. */
async function fails(p: Promise<unknown>): Promise<AgentError> {
  const err = await p.then(
    () => assert.fail("the call succeeded"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AgentError, `not an AgentError: ${err}`);
  return err;
}

describe("errors", { skip }, () => {
  let agent: TestAgent;
  let c: AgentClient;
  before(async () => {
    agent = await TestAgent.start();
    c = agent.client;
  });
  after(() => agent?.cleanup());

  it("not_found", async () => {
    const id = user("nobody");
    const err = await fails(c.get(id));
    assert.equal(err.code, "not_found");
    assert.equal(err.status, 404);
    assert.equal(err.message, `no instance for user "${id}"`);
    assert.equal((await fails(c.touch(id))).code, "not_found");
    assert.equal((await fails(c.stop(id))).code, "not_found");
    assert.equal((await fails(c.restart(id))).code, "not_found");
    assert.equal((await fails(c.remove(id))).code, "not_found");
    assert.equal((await fails(c.logs(id))).code, "not_found");
    assert.equal((await fails(c.followLogs(id))).code, "not_found");
  });

  it("invalid_argument", async () => {
    for (const [what, call] of [
      ["a bad user ID", () => c.get("not a valid id!")],
      ["a bad state", () => c.list({ state: "sleeping" as "running" })],
      ["resources past the ceiling", () => c.ensure(user("cpu"), { resources: { cpus: 64 } })],
      ["a bad tail", () => c.logs(user("tail"), { tail: -1 })],
      ["a negative prune threshold", () => c.prune({ idleHours: -1 })],
    ] as const) {
      const err = await fails(call());
      assert.equal(err.code, "invalid_argument", `${what}: ${err.code} ${err.message}`);
      assert.equal(err.status, 400, what);
      assert.ok(err.message.length > 0, what);
    }
  });

  it("too_large", async () => {
    const err = await fails(c.ensure(user("big"), { files: { "big.txt": "x".repeat(2 << 20) } }));
    assert.equal(err.code, "too_large");
    assert.equal(err.status, 413);
  });

  it("forbidden (a browser's request)", async () => {
    const browser = new AgentClient({ socketPath: agent.socket, headers: { Origin: "http://example.com" } });
    try {
      const err = await fails(browser.health());
      assert.equal(err.code, "forbidden");
      assert.equal(err.status, 403);
    } finally {
      browser.close();
    }
  });

  it("forbidden (an image outside allowedImages)", async () => {
    const err = await fails(c.ensure(user("img"), { image: "evil/image:latest" }));
    assert.equal(err.code, "forbidden");
    assert.equal(err.status, 403);
    assert.match(err.message, /not allowed/);
  });

  it("timeout (504) when the instance is not ready in time", async () => {
    // The stand-in listens on 18789; nothing answers on 9999.
    const slow = await TestAgent.start({ instance: { containerPort: "9999", readinessTimeoutSeconds: "2" } });
    const id = user("slow");
    try {
      const err = await fails(slow.client.ensure(id));
      assert.equal(err.code, "timeout");
      assert.equal(err.status, 504);
      assert.match(err.message, /not ready/);
    } finally {
      await removeQuietly(slow.client, id);
      await slow.cleanup();
    }
  });

  it("runtime_unavailable (503) when the engine does not answer", async () => {
    // The agent's docker CLI is a shim that, once told, answers as the
    // CLI does when the engine is down.
    const shim = mkdtempSync(join(tmpdir(), "zaki-docker-shim-"));
    const real = execFileSync("sh", ["-c", "command -v docker"], { encoding: "utf8" }).trim();
    writeFileSync(
      join(shim, "docker"),
      `#!/bin/sh\nif [ -e "${shim}/down" ]; then echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; fi\nexec "${real}" "$@"\n`,
      { mode: 0o755 },
    );
    const broken = await TestAgent.start({ env: { PATH: `${shim}:${process.env.PATH}` } });
    try {
      writeFileSync(join(shim, "down"), "");
      const err = await eventually("health says unavailable", async () => {
        const e = await fails(broken.client.health());
        assert.equal(e.code, "runtime_unavailable");
        return e;
      });
      assert.equal(err.status, 503);
      assert.equal((err.body as Health).status, "unavailable");
      const e2 = await fails(broken.client.ensure(user("down")));
      assert.equal(e2.code, "runtime_unavailable", e2.message);
      assert.equal(e2.status, 503);
    } finally {
      rmSync(join(shim, "down"), { force: true });
      await broken.cleanup();
      rmSync(shim, { recursive: true, force: true });
    }
  });

  it("timeout (the client's own) and aborted; the agent finishes the ensure", async (t) => {
    const id = user("late");
    t.after(() => removeQuietly(c, id));
    const err = await fails(c.ensure(id, {}, { timeoutMs: 1 }));
    assert.equal(err.code, "timeout");
    assert.equal(err.status, 0);

    const ac = new AbortController();
    ac.abort(new Error("the user went away"));
    const pre = await fails(c.get(id, { signal: ac.signal }));
    assert.equal(pre.code, "aborted");
    assert.equal((pre.cause as Error).message, "the user went away");
    assert.equal((await fails(c.events({ signal: ac.signal }))).code, "aborted");

    const again = await c.ensure(id);
    assert.ok(["created", "reused"].includes(again.outcome!), again.outcome);
    assert.equal(agent.containers(id).length, 1);
  });

  it("unreachable", async () => {
    const gone = new AgentClient({ socketPath: agent.socket + ".gone" });
    const err = await fails(gone.list());
    assert.equal(err.code, "unreachable");
    assert.equal(err.status, 0);
    assert.ok(isAgentError(err, "unreachable"));
  });
});
