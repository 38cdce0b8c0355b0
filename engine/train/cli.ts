/** Runs `cairn-train` when this file is the process's entry (the older-Node path of bin/cairn-train.js). */
import { main } from './main.ts'

process.exitCode = await main(process.argv.slice(2))
setTimeout(() => process.exit(process.exitCode), 2000).unref()
