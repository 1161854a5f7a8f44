// A caller that hangs up mid-ensure: the agent finishes (or cleans up),
// and the next ensure succeeds with exactly one container.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AgentClient, isAgentError } from "@zaki-platform/agent-client";
import { engine, removeQuietly, TestAgent, user } from "./harness.js";

const { skip } = engine();

describe("hang-up mid-ensure", { skip }, () => {
  let agent: TestAgent;
  let c: AgentClient;
  before(async () => {
    agent = await TestAgent.start();
    c = agent.client;
  });
  after(() => agent?.cleanup());

  it("right after the request went out", async (t) => {
    const id = user("hup1");
    t.after(() => removeQuietly(c, id));
    const ac = new AbortController();
    const p = c.ensure(id, {}, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(p, (e: unknown) => isAgentError(e, "aborted"));
    const next = await c.ensure(id);
    assert.equal(next.state, "running");
    assert.ok(["created", "reused"].includes(next.outcome!), next.outcome);
    assert.equal(agent.containers(id).length, 1);
    assert.equal((await fetch(next.url + "/health")).status, 200);
  });

  it("while the container starts", async (t) => {
    const id = user("hup2");
    t.after(() => removeQuietly(c, id));
    const ac = new AbortController();
    const events = await c.events();
    const p = c.ensure(id, {}, { signal: ac.signal });
    for await (const ev of events) {
      if (ev.type === "instance.started" && ev.userId === id) {
        ac.abort();
        break;
      }
    }
    await assert.rejects(p, (e: unknown) => isAgentError(e, "aborted"));
    const next = await c.ensure(id);
    assert.equal(next.state, "running");
    assert.ok(["created", "reused"].includes(next.outcome!), next.outcome);
    assert.equal(agent.containers(id).length, 1);
    const list = await c.list();
    assert.equal(list.filter((i) => i.userId === id).length, 1);
  });

  it("with progress followed, and ensures racing from several clients", async (t) => {
    const id = user("hup3");
    t.after(() => removeQuietly(c, id));
    const ac = new AbortController();
    const p = c.ensure(id, {}, { signal: ac.signal, onProgress: () => {} });
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(p, (e: unknown) => isAgentError(e, "aborted"));
    const clients = [0, 1, 2].map(() => new AgentClient({ socketPath: agent.socket }));
    try {
      const all = await Promise.all(clients.map((k) => k.ensure(id)));
      assert.equal(new Set(all.map((i) => i.containerId)).size, 1);
      assert.ok(all.filter((i) => i.outcome === "created").length <= 1);
    } finally {
      clients.forEach((k) => k.close());
    }
    assert.equal(agent.containers(id).length, 1);
  });
});
