// The Khronos glTF validator (npm gltf-validator) over each file named: prints {file: report} as JSON.
import { readFileSync } from "node:fs";
import validator from "gltf-validator";

const reports = {};
for (const file of process.argv.slice(2)) {
  reports[file] = await validator.validateBytes(new Uint8Array(readFileSync(file)), { maxIssues: 0 });
}
process.stdout.write(JSON.stringify(reports));
