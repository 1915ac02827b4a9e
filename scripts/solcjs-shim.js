#!/usr/bin/env node
// A solc command line for py-solc-x, backed by solcjs (the npm package `solc`).
// It speaks the two things py-solc-x asks of a compiler: `--version` and `--standard-json` (input on stdin,
// output on stdout). solcjs's own CLI prints a banner before its JSON; this prints JSON only.
// Imports resolve against the project's node_modules (OpenZeppelin) and the contracts folder.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const solc = require(path.join(root, "node_modules", "solc"));
const args = process.argv.slice(2);

if (args.includes("--version")) {
  process.stdout.write("solc, the solidity compiler commandline interface\nVersion: " + solc.version() + "\n");
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("solcjs-shim: only --version and --standard-json are supported\n");
  process.exit(2);
}

const searchRoots = [root, path.join(root, "contracts"), path.join(root, "node_modules")];

function findImports(importPath) {
  for (const base of searchRoots) {
    const candidate = path.resolve(base, importPath);
    if (candidate.startsWith(root) && fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: "File not found: " + importPath };
}

const input = fs.readFileSync(0, "utf8");
const output = solc.compile(input, { import: findImports });
process.stdout.write(output);
