// The test harness: a real zaki-agent (bin/zaki-agent and its runtime
// plugin) on the real engine, with a temporary config, state dir, socket,
// network, label prefix and port window, as internal/testenv starts one
// for the Go tests. The stand-in image zaki/gateway-stub:latest is the
// instance image (built from bin/gateway-stub when the engine lacks it).

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AgentClient, isAgentError, type ClientOptions } from "@zaki-platform/agent-client";

export const STUB_IMAGE = "zaki/gateway-stub:latest";
/** The package's root (the tests run from build/). */
export const PACKAGE_ROOT = fileURLToPath(new URL("../", import.meta.url));
export const REPO_ROOT = resolve(PACKAGE_ROOT, "../..");
const BIN_DIR = process.env.ZAKI_BIN_DIR || join(REPO_ROOT, "bin");

/**
 * engine says whether the tests can run: { skip } names why not. With
 * ZAKI_REQUIRE_DOCKER=1 a missing engine throws instead, so that the test
 * file fails rather than skips.
 */
export function engine(): { skip?: string } {
  let why: string | undefined;
  try {
    execFileSync("docker", ["info", "--format", "{{.ServerVersion}}"], { stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
  } catch (err) {
    why = `no Docker engine: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  if (why && process.env.ZAKI_REQUIRE_DOCKER === "1") {
    throw new Error(`ZAKI_REQUIRE_DOCKER=1 but ${why} (run scripts/ensure-docker.sh)`);
  }
  if (!why) ensureBinaries();
  return why ? { skip: why } : {};
}

function ensureBinaries(): void {
  for (const b of ["zaki-agent", "zaki-runtime-docker", "gateway-stub"]) {
    if (!existsSync(join(BIN_DIR, b))) throw new Error(`${join(BIN_DIR, b)} is missing: run \`make build\` at the repository's root (or set ZAKI_BIN_DIR)`);
  }
  try {
    docker("image", "inspect", "--format", "{{.Id}}", STUB_IMAGE);
  } catch {
    const dir = mkdtempSync(join(tmpdir(), "zaki-stub-"));
    try {
      copyFileSync(join(BIN_DIR, "gateway-stub"), join(dir, "gateway-stub"));
      copyFileSync(join(REPO_ROOT, "runtime/runtimetest/gateway-stub/Dockerfile"), join(dir, "Dockerfile"));
      docker("build", "-q", "-t", STUB_IMAGE, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** docker runs the docker CLI and returns its trimmed output. */
export function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 }).trim();
}

let users = 0;
/**
 * user returns a user ID unique to this run: its pid and a counter, so
 * that test files side by side (and the Go tests) never share one.
 */
export function user(name: string): string {
  return `ts${process.pid}-${++users}-${name}`;
}

/** unique returns a name the leftover sweep (scripts/sweep-test-leftovers.sh) recognises. */
function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${process.hrtime.bigint() % 1_000_000_000n}`;
}

// The agents of this process, ended with it even when it is interrupted
// (a test runner's timeout sends SIGTERM): an agent left running would
// keep its socket and state dir. Their containers are the leftover
// sweep's (scripts/sweep-test-leftovers.sh: the network names this pid).
const running = new Set<ChildProcess>();
function endAll(): void {
  for (const p of running) p.kill("SIGTERM");
}
process.once("exit", endAll);
for (const [sig, n] of [["SIGINT", 2], ["SIGTERM", 15]] as const) {
  process.once(sig, () => {
    endAll();
    process.exit(128 + n);
  });
}

/** Options of TestAgent.start. */
export interface AgentOptions {
  /** Keys of [instance] (TOML values) replacing or adding to the defaults. */
  instance?: Record<string, string>;
  /** Keys of [hot] (TOML values), e.g. a short windowMinutes. */
  hot?: Record<string, string>;
  /** Added to the agent's environment (e.g. DOCKER_HOST). */
  env?: Record<string, string>;
  /** Options of the client made for it (its socket is set). */
  client?: ClientOptions;
  /** Also accept a health of 503 as ready (an agent without an engine). */
  unhealthyOK?: boolean;
}

/** TestAgent is one zaki-agent process and what it made. */
export class TestAgent {
  readonly dir: string;
  readonly socket: string;
  readonly network = unique("zaki-tstest-net");
  readonly labelPrefix = `zts${process.pid}${Math.floor(Math.random() * 1e6)}`;
  readonly portLo = 30000 + Math.floor(Math.random() * 300) * 100;
  readonly client: AgentClient;
  #proc?: ChildProcess;
  #exited?: Promise<void>;
  #log = "";

  private constructor(readonly opts: AgentOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "zaki-agent-tstest-"));
    this.socket = join(this.dir, "agent.sock");
    this.client = new AgentClient({ ...opts.client, socketPath: this.socket });
  }

  /** start writes the config, starts the agent and waits until it answers. */
  static async start(opts: AgentOptions = {}): Promise<TestAgent> {
    const a = new TestAgent(opts);
    const instance: Record<string, string> = {
      image: JSON.stringify(STUB_IMAGE),
      allowedImages: `["zaki/*"]`,
      network: JSON.stringify(a.network),
      labelPrefix: JSON.stringify(a.labelPrefix),
      portRange: JSON.stringify(`${a.portLo}-${a.portLo + 99}`),
      healthCmd: `["/gateway-stub", "-probe"]`,
      healthIntervalSeconds: "2",
      readinessTimeoutSeconds: "30",
      stopTimeoutSeconds: "2",
      ...opts.instance,
    };
    const config = [
      `socket = ${JSON.stringify(a.socket)}`,
      `socketGroup = ""`,
      `stateDir = ${JSON.stringify(join(a.dir, "state"))}`,
      `runtime = "docker"`,
      `pluginDir = ${JSON.stringify(BIN_DIR)}`,
      `logLevel = "debug"`,
      ``,
      `[instance]`,
      ...Object.entries(instance).map(([k, v]) => `${k} = ${v}`),
      ``,
      `[hot]`,
      ...Object.entries(opts.hot ?? {}).map(([k, v]) => `${k} = ${v}`),
      ``,
    ].join("\n");
    writeFileSync(join(a.dir, "config.toml"), config, { mode: 0o600 });
    await a.#run();
    return a;
  }

  async #run(): Promise<void> {
    const proc = spawn(join(BIN_DIR, "zaki-agent"), ["--config", join(this.dir, "config.toml")], {
      env: { ...process.env, ...this.opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (b: Buffer) => {
      this.#log += b.toString();
      if (this.#log.length > 4 << 20) this.#log = this.#log.slice(-(2 << 20));
    };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);
    this.#proc = proc;
    running.add(proc);
    this.#exited = new Promise((r) =>
      proc.once("exit", () => {
        running.delete(proc);
        r();
      }),
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        // Ready once its first reconciliation is done (it answers before).
        const h = await this.client.health({ timeoutMs: 2000 });
        if (h.agent.ready) return;
        if (proc.exitCode !== null) throw new Error(`zaki-agent exited before it was ready:\n${this.#log}`);
        if (Date.now() > deadline) throw new Error(`zaki-agent not reconciled within 60s\n${this.#log}`);
      } catch (err) {
        if (this.opts.unhealthyOK && isAgentError(err, "runtime_unavailable") && (err as { status: number }).status === 503) return;
        if (proc.exitCode !== null) throw new Error(`zaki-agent exited before it was ready:\n${this.#log}`);
        if (Date.now() > deadline) throw new Error(`zaki-agent not ready within 60s: ${err}\n${this.#log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** log is what the agent printed so far. */
  get log(): string {
    return this.#log;
  }

  /** containers lists the IDs of the containers of a user (of all users without one). */
  containers(userId?: string): string[] {
    const filter = userId ? `label=${this.labelPrefix}.userId=${userId}` : `label=${this.labelPrefix}.userId`;
    const out = docker("ps", "-aq", "--no-trunc", "--filter", filter);
    return out === "" ? [] : out.split(/\s+/);
  }

  /** stop ends the agent (SIGTERM, SIGKILL after 30 s); its instances stay. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    await this.#exited;
    clearTimeout(t);
  }

  /** cleanup stops the agent and removes everything it made. */
  async cleanup(): Promise<void> {
    this.client.close();
    await this.stop();
    const ids = [
      ...this.containers(),
      ...docker("ps", "-aq", "--no-trunc", "--filter", `network=${this.network}`).split(/\s+/).filter(Boolean),
    ];
    if (ids.length > 0) {
      try {
        docker("rm", "-f", ...new Set(ids));
      } catch {
        // gone already
      }
    }
    try {
      docker("network", "rm", this.network);
    } catch {
      // never made
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** removeQuietly removes a user's instance and data, whether or not it exists. */
export async function removeQuietly(client: AgentClient, userId: string): Promise<void> {
  try {
    await client.remove(userId, { purge: true });
  } catch (err) {
    if (!isAgentError(err, "not_found")) throw err;
  }
}

/** eventually polls fn until it returns without throwing, within ms. */
export async function eventually<T>(what: string, fn: () => Promise<T> | T, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
