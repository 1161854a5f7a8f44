// The package as an operator gets it: `npm pack`, installed into an empty
// project, then loaded with require and with import; no runtime
// dependency; the ESM and CommonJS builds offer the same API.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PACKAGE_ROOT } from "./harness.js";

describe("package", () => {
  const dir = mkdtempSync(join(tmpdir(), "zaki-pack-"));
  let tarball = "";
  let files: string[] = [];
  before(() => {
    const out = execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: PACKAGE_ROOT, encoding: "utf8" });
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    tarball = join(dir, info!.filename);
    files = info!.files.map((f) => f.path).sort();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("holds the ESM and CommonJS builds with their .d.ts, and no sources", () => {
    for (const f of ["package.json", "README.md", "dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json"]) {
      assert.ok(files.includes(f), `${f} missing from ${files.join(" ")}`);
    }
    assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("build/") || f.startsWith("node_modules/")), files.join(" "));
  });

  it("has no runtime dependency", () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"));
    for (const k of ["dependencies", "peerDependencies", "optionalDependencies", "bundleDependencies", "bundledDependencies"]) {
      assert.equal(pkg[k], undefined, k);
    }
  });

  it("installs into an empty project and loads with require and with import", () => {
    const app = join(dir, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: app, stdio: "pipe" });
    const surface = (code: string, esm: boolean) =>
      execFileSync(process.execPath, [...(esm ? ["--input-type=module"] : []), "-e", code], { cwd: app, encoding: "utf8" }).trim();
    const cjs = surface(`const m = require("@zaki-platform/agent-client"); const c = new m.AgentClient({ socketPath: "/x.sock" }); console.log(Object.keys(m).sort().join(","), c.socketPath, typeof c.ensure)`, false);
    const esm = surface(`import * as m from "@zaki-platform/agent-client"; const c = new m.AgentClient({ socketPath: "/x.sock" }); console.log(Object.keys(m).sort().join(","), c.socketPath, typeof c.ensure)`, true);
    assert.equal(cjs, esm);
    assert.match(cjs, /^AgentClient,AgentError,AgentStream,DEFAULT_SOCKET,DEFAULT_TIMEOUT_MS,SOCKET_ENV,isAgentError,lines,ndjson \/x.sock function$/);
    // An error of one build is recognised by the other.
    const cross = surface(
      `import { isAgentError } from "@zaki-platform/agent-client"; import { createRequire } from "node:module"; const { AgentError } = createRequire(import.meta.url)("@zaki-platform/agent-client"); console.log(isAgentError(new AgentError("not_found", 404, "x"), "not_found"))`,
      true,
    );
    assert.equal(cross, "true");
  });
});
