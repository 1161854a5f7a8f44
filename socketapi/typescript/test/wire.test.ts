// The client's wire handling, against a stand-in server on a Unix socket
// (no engine needed): error envelopes of every kind, answers that are not
// what the API promises, a kept-alive connection closed under a call,
// timeouts, the NDJSON reader, and the progress plumbing of ensure.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { AgentClient, AgentError, DEFAULT_SOCKET, isAgentError, lines, ndjson, type AgentEvent } from "@zaki-platform/agent-client";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

describe("wire", () => {
  const dir = mkdtempSync(join(tmpdir(), "zaki-wire-"));
  const socketPath = join(dir, "fake.sock");
  let handler: Handler = (_req, res) => res.end();
  let requests = 0;
  const perSocket = new WeakMap<object, number>();
  const server = http.createServer((req, res) => {
    requests++;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    handler(req, res, n);
  });
  const c = new AgentClient({ socketPath, timeoutMs: 5000 });

  before(() => new Promise<void>((r) => server.listen(socketPath, r)));
  after(async () => {
    c.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const json = (status: number, body: unknown) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };

  it("carries the envelope's code, the status and the message", async () => {
    for (const [status, code] of [
      [400, "invalid_argument"],
      [403, "forbidden"],
      [404, "not_found"],
      [405, "method_not_allowed"],
      [409, "conflict"],
      [413, "too_large"],
      [500, "internal"],
      [503, "runtime_unavailable"],
      [504, "timeout"],
      [429, "too_many_requests"],
    ] as const) {
      handler = json(status, { error: { code, message: `the ${code} message` } });
      const err = await c.get("u1").catch((e: unknown) => e);
      assert.ok(err instanceof AgentError, `${status}: ${err}`);
      assert.equal(err.name, "AgentError");
      assert.equal(err.code, code);
      assert.equal(err.status, status);
      assert.equal(err.message, `the ${code} message`);
      assert.ok(isAgentError(err, code));
    }
  });

  it("keeps what it can of an answer that is not an envelope", async () => {
    handler = (_req, res) => {
      res.writeHead(502, { "Content-Type": "text/plain" });
      res.end("bad gateway from a proxy");
    };
    const err = await c.list().catch((e: unknown) => e);
    assert.ok(isAgentError(err, "internal"), String(err));
    assert.equal(err.status, 502);
    assert.match(err.message, /502.*bad gateway from a proxy/);
    handler = json(404, { message: "no envelope" });
    const err404 = await c.list().catch((e: unknown) => e);
    assert.ok(isAgentError(err404, "not_found"), String(err404));
  });

  it("says bad_response for an answer that is not JSON", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end("{not json");
    };
    const err = await c.get("u1").catch((e: unknown) => e);
    assert.ok(isAgentError(err, "bad_response"), String(err));
    assert.equal(err.status, 0);
  });

  it("says disconnected when the answer breaks off", async () => {
    handler = (req, res) => {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "100" });
      res.write('{"userId": "u1"');
      setTimeout(() => req.socket.destroy(), 20);
    };
    const err = await c.get("u1").catch((e: unknown) => e);
    assert.ok(isAgentError(err, "disconnected"), String(err));
  });

  it("sends a call again when its kept-alive connection was closed under it", async () => {
    handler = (req, res, n) => {
      if (n > 1) {
        req.socket.destroy(); // as if the agent's idle timeout hit just then
        return;
      }
      json(200, [])(req, res);
    };
    const before = requests;
    assert.deepEqual(await c.list(), []);
    assert.deepEqual(await c.list(), []);
    assert.equal(requests - before, 3, "the second call went twice");
  });

  it("keeps connections alive", async () => {
    handler = json(200, []);
    const sockets = new Set<object>();
    const k = new AgentClient({ socketPath });
    const seen = (req: http.IncomingMessage) => sockets.add(req.socket);
    server.on("request", seen);
    try {
      for (let i = 0; i < 3; i++) await k.list();
    } finally {
      server.off("request", seen);
      k.close();
    }
    assert.equal(sockets.size, 1);
  });

  it("times out waiting for an answer, and while reading one", async () => {
    handler = () => {}; // never answers
    let err = await c.health({ timeoutMs: 100 }).catch((e: unknown) => e);
    assert.ok(isAgentError(err, "timeout"), String(err));
    assert.equal(err.status, 0);
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.write("[");
    };
    err = await c.list({ timeoutMs: 100 }).catch((e: unknown) => e);
    assert.ok(isAgentError(err, "timeout"), String(err));
    // A client-wide default applies to every call.
    const short = new AgentClient({ socketPath, timeoutMs: 100 });
    handler = () => {};
    err = await short.get("u1").catch((e: unknown) => e);
    short.close();
    assert.ok(isAgentError(err, "timeout"), String(err));
  });

  it("fails a stream whose line is not JSON", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/x-ndjson" });
      res.end('{"type": "runtime.up", "timeMs": 1}\nnot json\n');
    };
    const events = await c.events();
    const got: AgentEvent[] = [];
    const err = await (async () => {
      for await (const ev of events) got.push(ev);
    })().catch((e: unknown) => e);
    assert.equal(got.length, 1);
    assert.ok(isAgentError(err, "bad_response"), String(err));
  });

  it("reads the pull progress an ensure streams, then its instance", async () => {
    let accept: string | undefined;
    let url: string | undefined;
    handler = (req, res) => {
      accept = req.headers.accept;
      url = req.url;
      res.writeHead(200, { "Content-Type": "application/x-ndjson" });
      res.write(JSON.stringify({ progress: { image: "zaki/x:1", status: "Pulling fs layer" } }) + "\n");
      setTimeout(() => {
        res.write(JSON.stringify({ progress: { image: "zaki/x:1", status: "Download complete" } }) + "\n");
        res.end(JSON.stringify({ instance: { userId: "u1", outcome: "created" } }) + "\n");
      }, 20);
    };
    const progress: string[] = [];
    const inst = await c.ensure("u1", { image: "zaki/x:1" }, { force: true, onProgress: (p) => progress.push(p.status) });
    assert.equal(accept, "application/x-ndjson");
    assert.equal(url, "/v1/instances/u1?force=true");
    assert.equal(inst.outcome, "created");
    assert.deepEqual(progress, ["Pulling fs layer", "Download complete"]);
  });

  it("turns an error line into the AgentError a plain answer gives", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/x-ndjson" });
      res.write(JSON.stringify({ progress: { image: "zaki/x:1", status: "Pulling fs layer" } }) + "\n");
      res.end(JSON.stringify({ error: { status: 502, code: "pull_failed", message: "pull image: manifest unknown" } }) + "\n");
    };
    const err = await c.pullImage("zaki/x:1", { onProgress: () => {} }).catch((e: unknown) => e);
    assert.ok(isAgentError(err, "pull_failed"), String(err));
    assert.equal((err as { status: number }).status, 502);
  });

  it("fails a progress stream that ends without its result", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/x-ndjson" });
      res.end(JSON.stringify({ progress: { image: "zaki/x:1", status: "Pulling fs layer" } }) + "\n");
    };
    const err = await c.ensure("u1", {}, { onProgress: () => {} }).catch((e: unknown) => e);
    assert.ok(isAgentError(err, "disconnected"), String(err));
  });

  it("takes a plain JSON answer to a progress call as the result", async () => {
    handler = json(200, { image: "zaki/x:1" });
    const res = await c.pullImage("zaki/x:1", { onProgress: () => assert.fail("no progress expected") });
    assert.equal(res.image, "zaki/x:1");
  });

  it("sends the body and query the API expects", async () => {
    const seen: { method?: string; url?: string; type?: string; body: string }[] = [];
    handler = (req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (d: string) => (body += d));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, type: req.headers["content-type"], body });
        if (req.method === "DELETE") {
          res.writeHead(204);
          res.end();
        } else json(200, req.url?.startsWith("/v1/prune") ? { dryRun: true, stopped: [], removed: [], failed: [] } : {})(req, res);
      });
    };
    await c.ensure("a b/c", { env: { K: "V" } });
    await c.remove("u1", { purge: true });
    await c.remove("u1");
    await c.prune({ dryRun: true, idleHours: 0.5 });
    await c.list({ state: "stopped" });
    await c.logs("u1", { tail: 5 });
    await c.logs("u1", { tail: 0, since: new Date(Date.UTC(2026, 11, 5, 8)), timestamps: true });
    await c.logs("u1", { since: "10m" });
    await c.touch("u1");
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.type ?? "", s.body]),
      [
        ["PUT", "/v1/instances/a%20b%2Fc", "application/json", '{"env":{"K":"V"}}'],
        ["DELETE", "/v1/instances/u1?purge=true", "", ""],
        ["DELETE", "/v1/instances/u1", "", ""],
        ["POST", "/v1/prune", "application/json", '{"dryRun":true,"idleHours":0.5}'],
        ["GET", "/v1/instances?state=stopped", "", ""],
        ["GET", "/v1/instances/u1/logs?tail=5", "", ""],
        ["GET", "/v1/instances/u1/logs?tail=0&since=2026-12-05T08%3A00%3A00.000Z&timestamps=true", "", ""],
        ["GET", "/v1/instances/u1/logs?since=10m", "", ""],
        ["POST", "/v1/instances/u1/touch", "", ""],
      ],
    );
    await assert.rejects(c.get(""), (e: unknown) => isAgentError(e, "invalid_argument"));
  });
});

describe("socket", () => {
  it("comes from the option, then ZAKI_SOCKET, then the default", () => {
    const saved = process.env.ZAKI_SOCKET;
    try {
      process.env.ZAKI_SOCKET = "/tmp/from-env.sock";
      assert.equal(new AgentClient({ socketPath: "/tmp/from-option.sock" }).socketPath, "/tmp/from-option.sock");
      assert.equal(new AgentClient().socketPath, "/tmp/from-env.sock");
      delete process.env.ZAKI_SOCKET;
      assert.equal(new AgentClient().socketPath, "/run/zaki-agent/agent.sock");
      assert.equal(DEFAULT_SOCKET, "/run/zaki-agent/agent.sock");
    } finally {
      if (saved === undefined) delete process.env.ZAKI_SOCKET;
      else process.env.ZAKI_SOCKET = saved;
    }
  });

  it("says unreachable when no agent listens", async () => {
    const c = new AgentClient({ socketPath: join(tmpdir(), `no-agent-${process.pid}.sock`) });
    const err = await c.health().catch((e: unknown) => e);
    assert.ok(isAgentError(err, "unreachable"), String(err));
    assert.equal(err.status, 0);
    assert.match(err.message, /cannot reach zaki-agent at .*no-agent/);
  });
});

describe("lines and ndjson", () => {
  const collect = async <T>(it: AsyncIterable<T>) => {
    const out: T[] = [];
    for await (const v of it) out.push(v);
    return out;
  };
  it("split at newlines across chunks, UTF-8 and CRLF included", async () => {
    const euro = Buffer.from("€"); // three bytes, split across chunks below
    const chunks = [Buffer.from("one\ntw"), Buffer.from("o\r\n"), euro.subarray(0, 1), euro.subarray(1), Buffer.from("\n\nlast")];
    assert.deepEqual(await collect(lines(Readable.from(chunks))), ["one", "two", "€", "", "last"]);
  });
  it("decode one value a line, skipping blank ones", async () => {
    const src = Readable.from([Buffer.from('{"a":1}\n\n{"a"'), Buffer.from(":2}\n")]);
    assert.deepEqual(await collect(ndjson<{ a: number }>(src)), [{ a: 1 }, { a: 2 }]);
  });
});
