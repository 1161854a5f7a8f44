// events and followed logs: async iterables that end cleanly on abort.

import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { AgentClient, AgentError, isAgentError, type AgentEvent, type AgentStream, type PullProgress } from "@zaki-platform/agent-client";
import { engine, removeQuietly, TestAgent, user } from "./harness.js";

const { skip } = engine();

/** next reads a stream until pred holds, within ms; it returns what it read. */
async function until<T>(it: AsyncIterator<T>, pred: (v: T) => boolean, ms = 30_000): Promise<T[]> {
  const seen: T[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`not seen within ${ms} ms; saw ${JSON.stringify(seen)}`)), deadline - Date.now()))),
    ]);
    clearTimeout(timer);
    if (r.done) throw new Error(`stream ended; saw ${JSON.stringify(seen)}`);
    seen.push(r.value);
    if (pred(r.value)) return seen;
  }
}

describe("streams", { skip }, () => {
  let agent: TestAgent;
  let c: AgentClient;
  before(async () => {
    agent = await TestAgent.start();
    c = agent.client;
  });
  after(() => agent?.cleanup());

  it("events: the lifecycle of an ensure, then an abort ends the iteration cleanly", async (t) => {
    const id = user("ev");
    t.after(() => removeQuietly(c, id));
    const ac = new AbortController();
    const events = await c.events({ signal: ac.signal });
    const it = events[Symbol.asyncIterator]();
    await c.ensure(id);
    const seen = await until(it, (e) => e.type === "instance.ensured" && e.userId === id);
    const ensured = seen.at(-1)!;
    assert.equal(ensured.outcome, "created");
    assert.ok(ensured.timeMs > 0);
    assert.ok(seen.some((e) => e.type === "instance.started" && e.userId === id), JSON.stringify(seen));

    // Abort while a read is pending: the iteration ends, no error.
    const pending = it.next();
    setTimeout(() => ac.abort(), 50);
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.ok(events.closed);
  });

  it("events: for await ends on abort, on close, and break closes", async (t) => {
    const id = user("ev2");
    t.after(() => removeQuietly(c, id));
    // abort, in a for-await loop
    const ac = new AbortController();
    const a = await c.events({ signal: ac.signal });
    const got: AgentEvent[] = [];
    const loop = (async () => {
      for await (const ev of a) {
        got.push(ev);
        if (ev.type === "instance.ensured" && ev.userId === id) ac.abort();
      }
      return "ended";
    })();
    await c.ensure(id);
    assert.equal(await loop, "ended");
    assert.ok(got.some((e) => e.type === "instance.ensured"));

    // close, from outside the loop
    const b = await c.events();
    const loopB = (async () => {
      let n = 0;
      for await (const _ of b) n++;
      return n;
    })();
    setTimeout(() => b.close(), 50);
    assert.equal(await loopB, 0);

    // break, then the stream is over
    const d = await c.events();
    const loopD = (async () => {
      for await (const ev of d) if (ev.userId === id) break;
    })();
    await c.touch(id);
    await c.stop(id);
    await loopD;
    const rest: AgentEvent[] = [];
    for await (const ev of d) rest.push(ev);
    assert.deepEqual(rest, []);
  });

  it("logs: the output so far, and the last lines", async (t) => {
    const id = user("logs");
    t.after(() => removeQuietly(c, id));
    const inst = await c.ensure(id);
    await fetch(inst.url + "/one");
    await fetch(inst.url + "/two");
    const all = await c.logs(id);
    assert.match(all, /gateway-stub listening on/);
    assert.match(all, /GET \/one\n.*GET \/two\n/s);
    const last = await c.logs(id, { tail: 1 });
    assert.equal(last.trim().split("\n").length, 1);
    assert.match(last, /GET \/(two|health)/);
    // (The instance's health checks may have logged more meanwhile.)
    assert.ok((await c.logs(id, { tail: "all" })).startsWith(all));
    // docker logs' habits: tail 0 is none, since a time to come is none,
    // timestamps prefix each line.
    assert.equal(await c.logs(id, { tail: 0 }), "");
    assert.equal(await c.logs(id, { since: new Date(Date.now() + 3600_000) }), "");
    assert.ok((await c.logs(id, { since: "1h" })).startsWith(all));
    const stamped = await c.logs(id, { tail: 1, timestamps: true });
    assert.match(stamped, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z \S+ GET \/(two|health)\n$/);
  });

  it("followLogs: lines as they come; an abort mid-stream ends it cleanly", async (t) => {
    const id = user("follow");
    t.after(() => removeQuietly(c, id));
    const inst = await c.ensure(id);
    const ac = new AbortController();
    const logs = await c.followLogs(id, { tail: 1, signal: ac.signal });
    const it = logs[Symbol.asyncIterator]();
    await fetch(inst.url + "/ping-1");
    await until(it, (l) => l.includes("GET /ping-1"));
    await fetch(inst.url + "/ping-2");
    const seen = await until(it, (l) => l.includes("GET /ping-2"));
    assert.ok(seen.every((l) => !l.includes("\n")), "one line at a time");
    const pending = it.next();
    setTimeout(() => ac.abort(), 50);
    assert.deepEqual(await pending, { done: true, value: undefined });
  });

  it("followLogs: ends when the container stops", async (t) => {
    const id = user("followstop");
    t.after(() => removeQuietly(c, id));
    await c.ensure(id);
    const logs: AgentStream<string> = await c.followLogs(id);
    const lines: string[] = [];
    const loop = (async () => {
      for await (const l of logs) lines.push(l);
    })();
    await new Promise((r) => setTimeout(r, 200));
    await c.stop(id);
    await loop;
    assert.match(lines.join("\n"), /gateway-stub stopped/);
  });

  it("ensure with onProgress: no pull, no progress, the instance", async (t) => {
    const id = user("progress");
    t.after(() => removeQuietly(c, id));
    const progress: PullProgress[] = [];
    const inst = await c.ensure(id, {}, { onProgress: (e) => progress.push(e) });
    assert.equal(inst.outcome, "created");
    assert.equal(progress.length, 0);
    const again = await c.ensure(id, {}, { onProgress: (e) => progress.push(e), timeoutMs: 10_000 });
    assert.equal(again.outcome, "reused");
  });

  it("pullImage: refused before any pull, streamed or not", async () => {
    const progress: PullProgress[] = [];
    for (const onProgress of [undefined, (p: PullProgress) => progress.push(p)]) {
      await assert.rejects(c.pullImage("evil/miner:latest", { onProgress }), (e: unknown) => isAgentError(e, "forbidden") && (e as AgentError).status === 403);
      await assert.rejects(c.pullImage("", { onProgress }), (e: unknown) => isAgentError(e, "invalid_argument") && (e as AgentError).status === 400);
    }
    assert.equal(progress.length, 0);
  });

  it("ensure with onProgress: an error the agent finds first keeps its status", async () => {
    await assert.rejects(
      c.ensure(user("prog-bad"), { image: "evil/miner:latest" }, { onProgress: () => {} }),
      (e: unknown) => isAgentError(e, "forbidden") && (e as AgentError).status === 403,
    );
  });

  it("a stream outlives the connection's idle timer", async (t) => {
    const id = user("idle");
    t.after(() => removeQuietly(c, id));
    // The http.Agent closes idle sockets after its timeout; a quiet
    // stream is not idle.
    const k = new AgentClient({ socketPath: agent.socket, agent: new http.Agent({ keepAlive: true, timeout: 200 }) });
    const ac = new AbortController();
    const events = await k.events({ signal: ac.signal });
    await new Promise((r) => setTimeout(r, 600));
    await c.ensure(id);
    await until(events[Symbol.asyncIterator](), (e) => e.type === "instance.ensured" && e.userId === id);
    ac.abort();
    k.httpAgent.destroy();
  });
});
