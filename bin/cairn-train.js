#!/usr/bin/env node
// Entry point of the `cairn-train` bin: the built-in trainer, run the same way on every rank.
// Like bin/cairn.js, it re-runs itself with the project's pinned Node when an older Node starts it.
import { existsSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const [major, minor] = process.versions.node.split('.').map(Number)
const main = fileURLToPath(new URL('../engine/train/main.ts', import.meta.url))
if (major > 22 || (major === 22 && minor >= 18)) {
  const { main: run } = await import(main)
  // exitCode, not exit(): stdout (the log) is flushed before the process ends.
  process.exitCode = await run(process.argv.slice(2))
  // Sockets or wasm handles must not keep a finished rank alive.
  setTimeout(() => process.exit(process.exitCode), 2000).unref()
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url))
  if (!existsSync(pinned)) {
    process.stderr.write(`cairn-train needs Node >= 22.18 (this is ${process.version}); run \`npm install\` in the cairn checkout.\n`)
    process.exit(2)
  }
  const { spawn } = await import('node:child_process')
  const child = spawn(pinned, [main.replace(/main\.ts$/, 'cli.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('error', (error) => {
    process.stderr.write(`cairn-train: cannot run ${pinned}: ${error.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)))
}
