// Every unary method against a real agent on the real engine.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AgentClient, isAgentError, type InstanceSpec } from "@zaki-platform/agent-client";
import { engine, PACKAGE_ROOT, removeQuietly, STUB_IMAGE, TestAgent, user } from "./harness.js";

const { skip } = engine();

describe("instances", { skip }, () => {
  let agent: TestAgent;
  let c: AgentClient;
  before(async () => {
    agent = await TestAgent.start();
    c = agent.client;
  });
  after(() => agent?.cleanup());

  const spec: InstanceSpec = {
    env: { OPENCLAW_GATEWAY_TOKEN: "change-me" },
    files: { "openclaw.json": '{"gateway": {"mode": "local"}}' },
    resources: { cpus: 1, memory: "512m" },
    labels: { plan: "pro" },
  };

  it("health", async () => {
    const h = await c.health();
    assert.equal(h.status, "ok");
    assert.equal(h.runtime.name, "docker");
    assert.ok(h.runtime.up);
    assert.ok(h.agent.ready);
    assert.ok(h.agent.pid > 0);
  });

  it("ensure creates, then reuses; get, list and touch see it", async (t) => {
    const id = user("life");
    t.after(() => removeQuietly(c, id));
    const a = await c.ensure(id, spec);
    assert.equal(a.outcome, "created");
    assert.equal(a.userId, id);
    assert.equal(a.state, "running");
    assert.equal(a.image, STUB_IMAGE);
    assert.equal(a.containerName, `zaki-user-${id}`);
    assert.equal(a.url, `http://127.0.0.1:${a.port}`);
    assert.equal(agent.containers(id).length, 1);

    // The gateway answers on the URL ensure returned.
    const hello = await fetch(a.url + "/");
    assert.equal(hello.status, 200);
    assert.match(await hello.text(), new RegExp(`gateway-stub for user "${id}"`));
    const file = await fetch(a.url + "/files/openclaw.json");
    assert.equal(await file.text(), spec.files!["openclaw.json"]);

    const b = await c.ensure(id, spec);
    assert.equal(b.outcome, "reused");
    assert.equal(b.containerId, a.containerId);
    assert.equal(b.port, a.port);

    const g = await c.get(id);
    assert.equal(g.containerId, a.containerId);
    assert.equal(g.outcome, undefined);
    assert.equal(g.labels?.plan, "pro");

    assert.ok((await c.list()).some((i) => i.userId === id));
    assert.ok((await c.list({ state: "running" })).some((i) => i.userId === id));
    assert.ok(!(await c.list({ state: "stopped" })).some((i) => i.userId === id));

    await new Promise((r) => setTimeout(r, 5));
    const touched = await c.touch(id);
    assert.ok(touched.lastUsedAtMs > g.lastUsedAtMs, `${touched.lastUsedAtMs} > ${g.lastUsedAtMs}`);
  });

  it("stop keeps the container, restart and ensure bring it back", async (t) => {
    const id = user("stop");
    t.after(() => removeQuietly(c, id));
    const a = await c.ensure(id);
    const s = await c.stop(id);
    assert.equal(s.state, "stopped");
    assert.equal(s.containerId, a.containerId);
    assert.ok((await c.list({ state: "stopped" })).some((i) => i.userId === id));
    const r = await c.restart(id);
    assert.equal(r.state, "running");
    assert.equal(r.containerId, a.containerId);
    assert.equal((await fetch(r.url + "/health")).status, 200);
    await c.stop(id);
    const e = await c.ensure(id);
    assert.equal(e.outcome, "started");
    assert.equal(e.containerId, a.containerId);
  });

  it("remove keeps the user's data unless purge", async (t) => {
    const id = user("rm");
    t.after(() => removeQuietly(c, id));
    const a = await c.ensure(id);
    assert.equal((await fetch(a.url + "/files/keep.txt", { method: "POST", body: "kept" })).status, 200);
    await c.remove(id);
    await assert.rejects(c.get(id), (e: unknown) => isAgentError(e, "not_found"));
    assert.equal(agent.containers(id).length, 0);

    const b = await c.ensure(id);
    assert.equal(b.outcome, "created");
    assert.equal(b.port, a.port, "a user keeps their port for life");
    assert.equal(await (await fetch(b.url + "/files/keep.txt")).text(), "kept");

    await c.remove(id, { purge: true });
    const d = await c.ensure(id);
    assert.equal((await fetch(d.url + "/files/keep.txt")).status, 404);
    await c.remove(id, { purge: true });
    await assert.rejects(c.remove(id, { purge: true }), (e: unknown) => isAgentError(e, "not_found"));
  });

  it("prune: a hot old instance is kept, marked stale", async (t) => {
    const id = user("prune");
    t.after(() => removeQuietly(c, id));
    await c.ensure(id);
    // Just used, so hot: the age rule marks it stale instead of removing it.
    const hot = await c.prune({ dryRun: true, maxAgeDays: 1e-9 });
    assert.equal(hot.dryRun, true);
    assert.ok(hot.staled.some((i) => i.userId === id && i.reason === "max-age"), JSON.stringify(hot));
    assert.ok(!hot.removed.some((i) => i.userId === id), JSON.stringify(hot));
    assert.equal((await c.get(id)).state, "running");
  });

  it("prune: a dry run says what it would remove, and removes nothing", async (t) => {
    // An agent whose hot window is 60 ms: its instances are soon cold.
    const cold = await TestAgent.start({ hot: { windowMinutes: "0.001" } });
    const cc = cold.client;
    const id = user("prune");
    // After hooks run in the order they are added: the instance goes first.
    t.after(() => removeQuietly(cc, id));
    t.after(() => cold.cleanup());
    await cc.ensure(id);
    await new Promise((r) => setTimeout(r, 200));
    const dry = await cc.prune({ dryRun: true, maxAgeDays: 1e-9 });
    assert.equal(dry.dryRun, true);
    const item = dry.removed.find((i) => i.userId === id);
    assert.ok(item, JSON.stringify(dry));
    assert.equal(item.reason, "max-age");
    assert.equal((await cc.get(id)).state, "running");

    const real = await cc.prune();
    assert.equal(real.dryRun, false);
    assert.ok(!real.removed.some((i) => i.userId === id), "nothing is 24 hours idle");

    const gone = await cc.prune({ maxAgeDays: 1e-9 });
    assert.ok(gone.removed.some((i) => i.userId === id), JSON.stringify(gone));
    await assert.rejects(cc.get(id), (e: unknown) => isAgentError(e, "not_found"));
  });

  it("exec: exit codes, output, caps, timeout, not running", async (t) => {
    const id = user("exec");
    t.after(() => removeQuietly(c, id));
    await c.ensure(id, spec);
    const ok = await c.exec(id, ["/gateway-stub", "-exec", "echo", "hello", "there"]);
    assert.deepEqual(ok, { exitCode: 0, stdout: "hello there\n", stderr: "", truncated: false });
    const err = await c.exec(id, ["/gateway-stub", "-exec", "stderr", "oops"]);
    assert.equal(err.stderr, "oops\n");
    const three = await c.exec(id, ["/gateway-stub", "-exec", "exit", "3"]);
    assert.equal(three.exitCode, 3);
    const who = await c.exec(id, ["/gateway-stub", "-exec", "id"]);
    assert.doesNotMatch(who.stdout, /^0:/, "exec must not run as root");
    const big = await c.exec(id, ["/gateway-stub", "-exec", "spam", String(2 << 20)]);
    assert.equal(big.truncated, true);
    assert.ok(big.stdout.length < 2 << 20, `stdout of ${big.stdout.length} bytes was not cut`);
    await assert.rejects(c.exec(id, ["/gateway-stub", "-exec", "sleep", "30"], { timeoutSeconds: 1 }), (e: unknown) => isAgentError(e, "timeout"));
    await assert.rejects(c.exec(id, []), (e: unknown) => isAgentError(e, "invalid_argument"));
    await c.stop(id);
    await assert.rejects(c.exec(id, ["/gateway-stub", "-exec", "echo", "x"]), (e: unknown) => isAgentError(e, "conflict"));
    await assert.rejects(c.exec(user("nobody"), ["/gateway-stub", "-exec", "echo", "x"]), (e: unknown) => isAgentError(e, "not_found"));
  });

  it("openapi is the document the types were generated from", async () => {
    const served = await c.openapi();
    const file = JSON.parse(readFileSync(join(PACKAGE_ROOT, "../openapi.json"), "utf8"));
    assert.deepEqual(served, file);
    // And openapi-typescript makes of the served document exactly the checked-in types.
    const dir = mkdtempSync(join(tmpdir(), "zaki-served-"));
    try {
      writeFileSync(join(dir, "openapi.json"), JSON.stringify(served));
      execFileSync(process.execPath, ["scripts/check-generated.mjs", "--from", join(dir, "openapi.json")], { cwd: PACKAGE_ROOT, stdio: "pipe" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ensure: a changed spec waits while the instance is hot, force applies it now", async (t) => {
    const id = user("force");
    t.after(() => removeQuietly(c, id));
    const first = await c.ensure(id, spec);
    assert.equal(first.outcome, "created");
    assert.ok(first.imageId?.startsWith("sha256:"), first.imageId);
    const changed: InstanceSpec = { ...spec, labels: { plan: "free" } };
    const kept = await c.ensure(id, changed);
    assert.equal(kept.outcome, "reused");
    assert.equal(kept.stale, true);
    assert.equal(kept.containerId, first.containerId);
    const forced = await c.ensure(id, changed, { force: true });
    assert.equal(forced.outcome, "recreated");
    assert.equal(forced.stale, false);
    assert.notEqual(forced.containerId, first.containerId);
    assert.equal(forced.port, first.port);
    const again = await c.ensure(id, changed, { force: true, onProgress: () => {} });
    assert.equal(again.outcome, "reused");
  });

  it("importUsers: a dry run changes nothing, then the user is brought over with its port and data, once", async (t) => {
    const id = user("imp");
    const src = mkdtempSync(join(tmpdir(), "zaki-tsimport-"));
    t.after(async () => {
      await removeQuietly(c, id);
      rmSync(src, { recursive: true, force: true });
    });
    mkdirSync(join(src, "users", `user-${id}`, "workspace", "memory"), { recursive: true });
    writeFileSync(join(src, "users", `user-${id}`, "workspace", "MEMORY.md"), "# the user's memory\n");
    writeFileSync(join(src, "users.json"), JSON.stringify({ [id]: { port: 19233, token: "t", created: Date.now() } }));
    const req = { usersFile: join(src, "users.json"), usersDir: join(src, "users") };

    const dry = await c.importUsers({ ...req, dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.users.map((u) => [u.userId, u.action]), [[id, "would-import"]]);
    await assert.rejects(c.get(id), (e: unknown) => isAgentError(e, "not_found"));

    const done = await c.importUsers(req);
    assert.deepEqual(done.users.map((u) => [u.userId, u.action, u.port]), [[id, "imported", 19233]]);
    const inst = await c.get(id);
    assert.equal(inst.port, 19233);
    assert.equal(readFileSync(join(agent.dir, "state", "instances", id, "workspace", "MEMORY.md"), "utf8"), "# the user's memory\n");
    assert.equal(readFileSync(join(src, "users", `user-${id}`, "workspace", "MEMORY.md"), "utf8"), "# the user's memory\n");

    const again = await c.importUsers(req);
    assert.deepEqual(again.users.map((u) => [u.userId, u.action]), [[id, "exists"]]);
    await assert.rejects(c.importUsers({ usersFile: "users.json" }), (e: unknown) => isAgentError(e, "invalid_argument"));
  });

  it("metrics", async () => {
    const m = await c.metrics();
    assert.match(m, /^zaki_api_requests_total\{/m);
    assert.match(m, /^zaki_instances\{/m);
  });

  it("keeps its connection alive between calls", async () => {
    const k = new AgentClient({ socketPath: agent.socket });
    try {
      await k.health();
      const free = () => Object.values(k.httpAgent.freeSockets).flat();
      const [first] = free();
      assert.ok(first, "an idle connection is kept");
      await k.list();
      await k.health();
      assert.deepEqual(free(), [first]);
    } finally {
      k.close();
    }
  });
});
