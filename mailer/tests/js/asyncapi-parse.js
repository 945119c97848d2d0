// Runs the official AsyncAPI parser (@asyncapi/parser 3.x) over one document and prints one
// JSON line: {"diagnostics": [{severity, code, message, path}], "parsed": bool}, severity as
// the parser names it (error, warning, information, hint). The Rust test decides what fails.
// Usage: node asyncapi-parse.js [file]   (without a file, the document is read from stdin)
"use strict";
const fs = require("fs");
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "information",
  [DiagnosticSeverity.Hint]: "hint",
};

async function main() {
  const file = process.argv[2];
  const text = fs.readFileSync(file === undefined ? 0 : file, "utf8");
  const { document, diagnostics } = await new Parser().parse(text);
  const report = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] || String(d.severity),
    code: d.code,
    message: d.message,
    path: (d.path || []).join("/"),
  }));
  console.log(JSON.stringify({ parsed: document !== undefined, diagnostics: report }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
