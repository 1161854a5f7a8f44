// build: dist/esm (ES modules) and dist/cjs (CommonJS), each with its
// .d.ts, from the same sources by two tsc runs; dist/cjs/package.json
// tells Node (and TypeScript) that the files there are CommonJS.
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync("dist", { recursive: true, force: true });
for (const project of ["tsconfig.json", "tsconfig.cjs.json"]) {
  execFileSync(process.execPath, [tsc, "-p", project], { stdio: "inherit" });
}
writeFileSync("dist/cjs/package.json", JSON.stringify({ type: "commonjs" }) + "\n");
