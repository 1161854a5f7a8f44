// The CommonJS build, as router/index.js uses it (require), typed from
// dist/cjs/index.d.ts, against a real agent.

import assert = require("node:assert/strict");
import test = require("node:test");
import client = require("@zaki-platform/agent-client");

test.describe("require", () => {
  test.it("loads the CommonJS build, whose calls reach a real agent", async (t) => {
    const { engine, removeQuietly, TestAgent, user } = await import("./harness.js");
    const { skip } = engine();
    if (skip) return t.skip(skip);
    const agent = await TestAgent.start();
    try {
      const c = new client.AgentClient({ socketPath: agent.socket });
      const id = user("cjs");
      try {
        const inst = await c.ensure(id);
        assert.equal(inst.outcome, "created");
        const err = await c.get(id + "-none").catch((e: unknown) => e);
        assert.ok(err instanceof client.AgentError);
        assert.equal(err.code, "not_found");
      } finally {
        await removeQuietly(agent.client, id);
        c.close();
      }
    } finally {
      await agent.cleanup();
    }
  });
});
