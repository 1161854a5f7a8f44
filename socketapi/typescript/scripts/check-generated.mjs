// check-generated: fails when src/generated/openapi.ts is not what
// openapi-typescript makes of the OpenAPI document (../openapi.json, or
// the file given with --from). `npm run generate` brings it up to date.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";

const i = process.argv.indexOf("--from");
const from = i > 0 ? process.argv[i + 1] : "../openapi.json";
const cli = fileURLToPath(new URL("../node_modules/openapi-typescript/bin/cli.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "zaki-openapi-ts-"));
try {
  const out = join(dir, "openapi.ts");
  execFileSync(process.execPath, [cli, from, "-o", out], { stdio: ["ignore", "ignore", "inherit"] });
  if (readFileSync(out, "utf8") !== readFileSync("src/generated/openapi.ts", "utf8")) {
    console.error(`socketapi/typescript/src/generated/openapi.ts is out of date with ${from}: run \`npm run generate\` in socketapi/typescript`);
    try {
      execFileSync("diff", ["-u", "src/generated/openapi.ts", out], { stdio: "inherit" });
    } catch {
      // diff exits 1 on a difference
    }
    process.exit(1);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
