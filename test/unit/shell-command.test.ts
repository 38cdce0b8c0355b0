import { test } from 'node:test'
import assert from 'node:assert/strict'
import { shellCodeArgument } from '../../operators/shell-command.ts'
import { checkShellParams } from '../../operators/shell.ts'

test('the code argument of a shell is found behind paths, wrappers, options and combined flags', () => {
  const cases: [string[], number | undefined][] = [
    [['sh', '-c', 'CODE'], 2],
    [['/bin/sh', '-c', 'CODE'], 2],
    [['/usr/bin/bash', '-ec', 'CODE'], 2],
    [['bash', '-xc', 'CODE', 'name', 'arg'], 2],
    [['dash', '-e', '-c', 'CODE'], 3],
    [['bash', '-c', '-e', 'CODE'], 3],
    [['bash', '-o', 'pipefail', '-c', 'CODE'], 4],
    [['bash', '--noprofile', '--norc', '-c', 'CODE'], 4],
    [['zsh', '-c', '--', 'CODE'], 3],
    [['ksh', '+x', '-c', 'CODE'], 3],
    [['env', 'sh', '-c', 'CODE'], 3],
    [['/usr/bin/env', '-i', 'A=1', 'B=2', 'bash', '-c', 'CODE'], 6],
    [['env', '-u', 'HOME', '--', 'sh', '-c', 'CODE'], 6],
    [['env', '-S', 'CODE'], 2],
    [['env', '--split-string=CODE'], 1],
    [['nice', '-n', '5', 'nohup', 'sh', '-c', 'CODE'], 6],
    [['timeout', '-s', 'KILL', '10', 'sh', '-c', 'CODE'], 6],
    [['setsid', 'busybox', 'sh', '-c', 'CODE'], 4],
    // Not code: no -c, a script file, or not a shell at all.
    [['sh', 'script.sh', '-c'], undefined],
    [['sh', '-e', 'script.sh'], undefined],
    [['bash', '-c'], undefined],
    [['echo', '-c', 'x'], undefined],
    [['python3', '-c', 'x'], undefined],
    [['shellcheck', '-c', 'x'], undefined],
  ]
  for (const [argv, code] of cases) assert.equal(shellCodeArgument(argv)?.code, code, argv.join(' '))
})

test('checkShellParams: templates in shell code are refused, positional arguments and plain commands are not', () => {
  const codes = (params: object) => checkShellParams(params as never).map((p) => `${p.code} ${p.path.join('.')}`)
  assert.deepEqual(codes({ command: ['sh', '-c', 'echo {{ params.p }}'] }), ['TEMPLATE_IN_SHELL_COMMAND command.2'])
  assert.deepEqual(codes({ command: ['bash', '-ec', 'ls {% if true %}x{% endif %}'] }), ['TEMPLATE_IN_SHELL_COMMAND command.2'])
  assert.deepEqual(codes({ command: ['sh', '-c', 'echo "$1"', 'sh', '{{ params.p }}'] }), [])
  assert.deepEqual(codes({ command: ['echo', '{{ params.p }}'] }), [])
  assert.deepEqual(codes({ command: ['sh', '-c', 'echo plain'] }), [])
  assert.deepEqual(codes({ script: 'echo', workdir: 'out/{{ ds }}' }), [])
  assert.deepEqual(codes({ script: 'echo', workdir: '{{ params.w }}' }), [])
  assert.deepEqual(codes({ script: 'echo', workdir: '/proc/self' }), ['INVALID_WORKDIR workdir'])
  assert.deepEqual(codes({ script: 'echo', workdir: '/scratch/{{ run.id }}' }), ['INVALID_WORKDIR workdir'])
  assert.deepEqual(codes({ script: 'echo', workdir: '../{{ ds }}' }), ['INVALID_WORKDIR workdir'])
  assert.deepEqual(codes({ script: 'echo', workdir: 'a/../../x' }), ['INVALID_WORKDIR workdir'])
  assert.deepEqual(codes({ script: 'echo', workdir: 'a/../b' }), [])
})
