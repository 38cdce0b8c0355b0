/**
 * deploy/: the Kubernetes manifests pass Kubernetes' published schemas (kubernetes-models, generated
 * from the Kubernetes OpenAPI document; KEDA's CRD schemas for the autoscaler), and the layout is the one
 * the docs promise: 2 schedulers, workers scaled on queue depth, a web and a model server, every role's
 * database connection from a Secret. The systemd units and the container image start roles cairn has.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { load, loadAll } from 'js-yaml'
import { validateText } from '../../engine/dag/validate.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const K8S = join(ROOT, 'deploy/kubernetes')

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, any>; [key: string]: unknown }

function manifests(): { file: string; doc: Manifest }[] {
  const found: { file: string; doc: Manifest }[] = []
  for (const file of readdirSync(K8S).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of loadAll(readFileSync(join(K8S, file), 'utf8'))) if (doc) found.push({ file, doc: doc as Manifest })
  }
  return found
}

/** The model class of an apiVersion and kind, from the package of published schemas. */
async function modelClass(apiVersion: string, kind: string): Promise<(new (data: unknown) => { validate(): void }) | undefined> {
  const module = apiVersion.startsWith('keda.sh/')
    ? await import(`@kubernetes-models/keda/${apiVersion}`)
    : await import(`kubernetes-models/${apiVersion}`)
  return (module as Record<string, new (data: unknown) => { validate(): void }>)[kind]
}

/** The commands `cairn help` lists. */
function cairnCommands(): Set<string> {
  const help = execFileSync(process.execPath, [join(ROOT, 'bin/cairn.js'), '--help'], { encoding: 'utf8' })
  return new Set([...help.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!))
}

const byKind = (kind: string, name: string): Manifest => {
  const found = manifests().find((m) => m.doc.kind === kind && m.doc.metadata.name === name)
  assert.ok(found, `${kind} ${name} in deploy/kubernetes`)
  return found.doc
}
const containerOf = (d: Manifest): Record<string, any> => d.spec!.template.spec.containers[0]

describe('deploy/kubernetes', () => {
  it('every document passes the published schema of its kind', async () => {
    const all = manifests()
    assert.ok(all.length >= 9)
    for (const { file, doc } of all) {
      const Model = await modelClass(doc.apiVersion, doc.kind)
      assert.ok(Model, `${file}: no published schema for ${doc.apiVersion} ${doc.kind}`)
      assert.doesNotThrow(() => new Model(doc).validate(), `${file}: ${doc.kind} ${doc.metadata.name}`)
    }
  })

  it("the ConfigMap's cairn.yaml is valid, and the servers listen beyond the pod", () => {
    const config = byKind('ConfigMap', 'cairn-config') as unknown as { data: Record<string, string> }
    const result = validateText('cairn.yaml', config.data['cairn.yaml']!, { kind: 'config' })
    assert.deepEqual(result.diagnostics.map((d) => `${d.code} ${d.message}`), [])
    const value = load(config.data['cairn.yaml']!) as { web: { host: string }; serve: { host: string } }
    assert.equal(value.web.host, '0.0.0.0')
    assert.equal(value.serve.host, '0.0.0.0')
  })

  it('the schemas catch a broken manifest (the check can fail)', async () => {
    const scheduler = structuredClone(byKind('Deployment', 'cairn-scheduler'))
    scheduler.spec!.replicas = 'two'
    delete scheduler.spec!.selector
    const Model = (await modelClass('apps/v1', 'Deployment'))!
    assert.throws(() => new Model(scheduler).validate(), /replicas must be integer|selector/)
  })

  it('two schedulers, workers scaled on queue depth, a web and two model servers, one image', () => {
    const commands = cairnCommands()
    const roles: Record<string, number> = { 'cairn-scheduler': 2, 'cairn-worker': 1, 'cairn-web': 1, 'cairn-serve': 2 }
    const images = new Set<string>()
    for (const [name, replicas] of Object.entries(roles)) {
      const deployment = byKind('Deployment', name)
      assert.equal(deployment.spec!.replicas, replicas, name)
      const container = containerOf(deployment)
      images.add(container.image)
      const role = container.args[0] as string
      assert.equal(`cairn-${role}`, name)
      assert.ok(commands.has(role), `cairn ${role} is a command`)
      // The database connection comes from the Secret, never from a literal.
      const url = (container.env as { name: string; value?: string; valueFrom?: any }[]).find((e) => e.name === 'DATABASE_URL')
      assert.deepEqual(url?.valueFrom, { secretKeyRef: { name: 'cairn-database', key: 'url' } }, name)
      assert.equal(url?.value, undefined)
      // Every role sees the same shared storage.
      assert.ok((deployment.spec!.template.spec.volumes as { persistentVolumeClaim?: { claimName: string } }[]).some((v) => v.persistentVolumeClaim?.claimName === 'cairn-shared'), name)
    }
    assert.equal(images.size, 1, 'one image, the command picks the role')
    const scaled = byKind('ScaledObject', 'cairn-worker')
    assert.equal(scaled.spec!.scaleTargetRef.name, 'cairn-worker')
    const trigger = scaled.spec!.triggers[0]
    assert.equal(trigger.type, 'postgresql')
    assert.equal(trigger.metadata.connectionFromEnv, 'DATABASE_URL')
    assert.match(trigger.metadata.query, /cairn\.task_instance WHERE state IN \('queued', 'running'\)/)
    assert.equal(byKind('Service', 'cairn-web').spec!.ports[0].port, 8080)
    assert.equal(byKind('Service', 'cairn-serve').spec!.ports[0].port, 8081)
  })
})

describe('deploy/systemd and deploy/container', () => {
  it('every unit starts a cairn role that exists', () => {
    const commands = cairnCommands()
    const units = readdirSync(join(ROOT, 'deploy/systemd')).filter((f) => f.endsWith('.service'))
    assert.deepEqual(units.sort(), ['cairn-scheduler.service', 'cairn-serve.service', 'cairn-web.service', 'cairn-worker@.service'])
    for (const unit of units) {
      const text = readFileSync(join(ROOT, 'deploy/systemd', unit), 'utf8')
      const exec = /^ExecStart=\S+ \S+cairn\.js (\S+)/m.exec(text)
      assert.ok(exec, unit)
      assert.ok(commands.has(exec[1]!), `${unit}: cairn ${exec[1]}`)
      assert.match(text, /^EnvironmentFile=\/etc\/cairn\/cairn\.env$/m)
      assert.match(text, /^KillSignal=SIGTERM$/m)
    }
  })

  it('the image runs cairn with the role as its command', () => {
    const text = readFileSync(join(ROOT, 'deploy/container/Containerfile'), 'utf8')
    assert.match(text, /^ENTRYPOINT \["node", "\/opt\/cairn\/bin\/cairn\.js"\]$/m)
    assert.match(text, /^CMD \["up"/m)
    assert.match(text, /^FROM node:24/m)
  })
})
