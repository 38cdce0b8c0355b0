#!/usr/bin/env node
// Entry point of the `cairn` bin. cairn's sources are TypeScript run by Node's type stripping
// (Node >= 22.18). When an older Node runs this file (e.g. `npx cairn` on a machine whose default
// Node is 20), re-run with the Node that npm installed for the project.
import { existsSync } from 'node:fs'
import module from 'node:module'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const [major, minor] = process.versions.node.split('.').map(Number)
const main = fileURLToPath(new URL('../engine/cli/main.ts', import.meta.url))
if (major > 22 || (major === 22 && minor >= 18)) {
  // V8's code cache for cairn's modules (and their type-stripped sources) makes every later start faster.
  module.enableCompileCache?.(fileURLToPath(new URL('../node_modules/.cache/node-compile/', import.meta.url)))
  const { runCli } = await import(main)
  await runCli()
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url))
  if (!existsSync(pinned)) {
    process.stderr.write(`cairn needs Node >= 22.18 (this is ${process.version}); run \`npm install\` in the cairn checkout.\n`)
    process.exit(2)
  }
  // Loaded only here: every command on a current Node starts without node:child_process.
  const { spawn } = await import('node:child_process')
  // Signals sent to this process (a service manager's SIGTERM, npm forwarding Ctrl-C) must reach cairn,
  // which stops in order; a terminal's Ctrl-C reaches both, and cairn counts a repeat within 1 s once.
  const child = spawn(pinned, [main, ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('error', (error) => {
    process.stderr.write(`cairn: cannot run ${pinned}: ${error.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)))
}
