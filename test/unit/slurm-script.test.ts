import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { JobSpec } from '../../engine/executors/executor.ts'
import { closeServer, listenInRange } from '../helpers/ports.ts'
import { buildSlurmScript, sanitizeJobName, sbatchOptionsOf, shellQuote, validateSlurmOptions } from '../../engine/executors/slurm-script.ts'

function spec(overrides: Partial<JobSpec> = {}): JobSpec {
  return { argv: ['python', 'train.py'], env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0, workdir: '/scratch/run-1', artifacts: [], artifactsDir: '/tmp/a', ...overrides }
}

test('the #SBATCH lines come from the typed options only', () => {
  const built = buildSlurmScript(spec({ gpusPerNode: 2, slurm: { partition: 'gpu', account: 'ml', qos: 'normal', time: '02:00:00', mem: '64G', constraint: 'a100&ib', exclusive: true } }), 'cairn-abc')
  assert.ok(built.ok)
  assert.deepEqual(sbatchOptionsOf(built.value.text), [
    '--job-name=cairn-abc',
    '--nodes=2',
    '--ntasks-per-node=1',
    '--gpus-per-node=2',
    '--output=/scratch/run-1/.cairn-slurm/cairn-abc.out',
    '--error=/scratch/run-1/.cairn-slurm/cairn-abc.err',
    '--open-mode=append',
    '--chdir=/scratch/run-1',
    '--export=NONE',
    '--partition=gpu',
    '--account=ml',
    '--qos=normal',
    '--time=02:00:00',
    '--mem=64G',
    '--constraint=a100&ib',
    '--exclusive',
  ])
})

test('cluster defaults apply and a task option overrides them', () => {
  const built = buildSlurmScript(spec({ slurm: { partition: 'big' } }), 'j', { partition: 'debug', account: 'acct' })
  assert.ok(built.ok)
  const options = sbatchOptionsOf(built.value.text)
  assert.ok(options.includes('--partition=big'))
  assert.ok(options.includes('--account=acct'))
  assert.ok(!options.includes('--partition=debug'))
})

test('valid time and memory forms are accepted', () => {
  for (const time of ['30', '30:00', '02:00:00', '1-0', '1-12', '1-12:30', '1-12:30:00', '0']) assert.ok(validateSlurmOptions({ time }).ok, time)
  for (const mem of ['1000', '64G', '512M', '1T', '8K']) assert.ok(validateSlurmOptions({ mem }).ok, mem)
})

test('hostile option values are refused with a message naming the option', () => {
  const hostile: [string, Record<string, unknown>][] = [
    ['partition', { partition: 'debug --wrap=touch /tmp/x' }],
    ['partition', { partition: 'debug\n#SBATCH --wrap=id' }],
    ['partition', { partition: '--wrap=id' }],
    ['partition', { partition: 'a;b' }],
    ['partition', { partition: '$(id)' }],
    ['partition', { partition: '`id`' }],
    ['account', { account: 'x y' }],
    ['qos', { qos: 'q=1' }],
    ['time', { time: '1:00 --wrap=id' }],
    ['time', { time: '01:00:00\n#SBATCH --uid=0' }],
    ['time', { time: 'INFINITE;id' }],
    ['time', { time: '100:00:00:00' }],
    ['mem', { mem: '64G --wrap=id' }],
    ['mem', { mem: '64GB' }],
    ['constraint', { constraint: 'a100 $(id)' }],
    ['constraint', { constraint: '-a' }],
    ['exclusive', { exclusive: 'yes' }],
    ['wrap', { wrap: 'id' }],
  ]
  for (const [key, options] of hostile) {
    const checked = validateSlurmOptions(options as never)
    assert.equal(checked.ok, false, JSON.stringify(options))
    assert.match((checked as { message: string }).message, new RegExp(`slurm\\.${key}`))
    const built = buildSlurmScript(spec({ slurm: options as never }), 'j')
    assert.equal(built.ok, false)
  }
})

test('workdirs that are not plain absolute paths are refused', () => {
  for (const workdir of ['relative/dir', '/a b', '/a\n#SBATCH --wrap=id', '/x/%j', '/a/../b', "/a'b", '/a;b', '/$(id)']) {
    const built = buildSlurmScript(spec({ workdir }), 'j')
    assert.equal(built.ok, false, workdir)
    assert.match((built as { message: string }).message, /workdir/)
  }
})

test('environment names must be names; values are single-quoted', () => {
  assert.equal(buildSlurmScript(spec({ env: { 'A;B': '1' } }), 'j').ok, false)
  assert.equal(buildSlurmScript(spec({ env: { 'A B': '1' } }), 'j').ok, false)
  const built = buildSlurmScript(spec({ env: { TOKEN: "it's $(id) `id`\nnext" } }), 'j')
  assert.ok(built.ok)
  assert.equal(built.value.envText, `export TOKEN='it'\\''s $(id) \`id\`\nnext'\n`)
})

test('job names are sanitized', () => {
  assert.equal(sanitizeJobName('a b;c$(d)\n'), 'a_b_c__d__')
  assert.equal(sanitizeJobName(''), 'cairn')
  assert.equal(sanitizeJobName('x'.repeat(100)).length, 64)
})

test('counts are integers in range', () => {
  assert.equal(buildSlurmScript(spec({ nodes: 0 }), 'j').ok, false)
  assert.equal(buildSlurmScript(spec({ nodes: 1.5 }), 'j').ok, false)
  assert.equal(buildSlurmScript(spec({ tasksPerNode: -1 }), 'j').ok, false)
  assert.equal(buildSlurmScript(spec({ gpusPerNode: Number.NaN }), 'j').ok, false)
  assert.equal(buildSlurmScript(spec({ argv: [] }), 'j').ok, false)
  assert.equal(buildSlurmScript(spec({ argv: ['a\0b'] }), 'j').ok, false)
})

test('hostile argv words reach the program literally (run through sh as the job would)', () => {
  const words = ['a;b', '$(touch /tmp/never)', '`id`', 'line1\nline2', '--wrap=id', "it's", '"q"', '\\', '*', '', ' spaced ', '#SBATCH --uid=0']
  const built = buildSlurmScript(spec({ argv: ['printf', '%s\\0', ...words] }), 'j')
  assert.ok(built.ok)
  const options = sbatchOptionsOf(built.value.text)
  assert.ok(!options.some((option) => option.includes('wrap') || option.includes('uid')))
  // The srun line: replace srun's own options and run the rest with the rank environment faked.
  // The srun command runs to the end of the script (a quoted word may hold a newline).
  const srunLine = built.value.text.slice(built.value.text.indexOf('\nexec srun ') + 1)
  const local = srunLine.replace(/^exec srun (--\S+ )+/, 'exec ')
  const dir = mkdtempSync(path.join(tmpdir(), 'slurm-script-'))
  const file = path.join(dir, 'run.sh')
  writeFileSync(file, `${local}\n`)
  const out = execFileSync('sh', [file], { env: { PATH: process.env.PATH ?? '', SLURM_PROCID: '0', SLURM_NODEID: '0', SLURM_LOCALID: '0', SLURM_NTASKS: '1', SLURM_NTASKS_PER_NODE: '1' } })
  assert.deepEqual(out.toString('utf8').split('\0').slice(0, -1), words)
  assert.equal(shellQuote("'"), `''\\'''`)
})

test('the rank wrapper derives the torchrun environment from SLURM_*', () => {
  const built = buildSlurmScript(spec({ argv: ['sh', '-c', 'echo "$RANK $NODE_RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE"'] }), 'j')
  assert.ok(built.ok)
  const srunLine = built.value.text.split('\n').find((line) => line.startsWith('exec srun '))
  assert.ok(srunLine)
  const out = execFileSync('sh', ['-c', srunLine.replace(/^exec srun (--\S+ )+/, 'exec ')], { env: { PATH: process.env.PATH ?? '', SLURM_PROCID: '3', SLURM_NODEID: '1', SLURM_LOCALID: '1', SLURM_NTASKS: '4', SLURM_NTASKS_PER_NODE: '2' } })
  assert.equal(out.toString().trim(), '3 1 1 4 2')
})

/** The port step of the batch script needs `ss` (iproute2) where it runs; under CI its absence fails the test. */
const noSs = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v ss'], { stdio: 'ignore' })
    return false
  } catch {
    return process.env.CI ? false : 'ss (iproute2) is not installed'
  }
})()

test('without a master port, the batch script steps past a port that something on its node listens on', { skip: noSs }, async () => {
  const built = buildSlurmScript(spec(), 'cairn-port')
  assert.ok(built.ok)
  const lines = built.value.text.split('\n')
  const from = lines.findIndex((line) => line.startsWith('MASTER_PORT='))
  const to = lines.indexOf('fi', from)
  assert.ok(from > 0 && to > from, built.value.text)
  const portSection = [...lines.slice(from, to + 1), 'echo "$MASTER_PORT"'].join('\n')
  // A listener on a port the job id would give (15000 + id), on this node.
  const { server, port: taken } = await listenInRange('127.0.0.1', 15_000, 19_000)
  try {
    const run = (jobId: number) => Number(execFileSync('sh', ['-c', portSection], { env: { PATH: process.env.PATH ?? '', SLURM_JOB_ID: String(jobId) }, encoding: 'utf8' }).trim())
    const chosen = run(taken - 15_000)
    assert.ok(chosen > taken && chosen <= taken + 100, `port ${chosen} for a job whose own port ${taken} is taken`)
    assert.equal(run(taken - 15_000 + 20_000), chosen, 'the id wraps at 20,000')
  } finally {
    await closeServer(server)
  }
  // A given port is used as it is.
  const fixed = buildSlurmScript(spec({ masterPort: 29_500 }), 'cairn-port')
  assert.ok(fixed.ok)
  assert.ok(fixed.value.text.includes('\nMASTER_PORT=29500\n') && !fixed.value.text.includes('ss -Htln'))
})
