/**
 * The Datasets and Feature views views of the status page in a real browser (headless Chromium)
 * against a real web server and database, with datasets published through the datasets service and
 * feature view rows as materialization leaves them: the list, a dataset's schema, lineage graph from
 * source to training set, expectation report, quarantined rows and row preview; a feature view's
 * definition, its intervals on a timeline with the gap visible, its online rows; values from data
 * that look like HTML shown as text; dark theme; readable at 400 px.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { createDatasets } from '../../engine/data/datasets.ts'
import type { Db } from '../../engine/store/db.ts'
import { browserSkipReason, overflowsViewport } from '../helpers/browser.ts'
import { ARTIFACTS, HOSTILE, pageSuite } from '../helpers/page-suite.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { seedFeatureView } from '../helpers/feature-views.ts'

const skip = browserSkipReason()

describe('datasets and feature views pages', { skip }, () => {
  const suite = pageSuite()
  let base: string
  let page: Page
  let db: Db

  after(() => suite.stop())

  before(async () => {
    const created = await suite.database()
    db = created.db
    const dir = created.dir
    const datasets = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'seed' } })
    // Source -> feature view -> training set, as the churn example builds it.
    await seedVersion(datasets, 'events', `SELECT 'u' || i AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) HOUR AS ts, i * 2.5 AS amount FROM range(30) t(i)`, {
      expectations: [
        { expectation: 'min_rows', expected: 1, observed: 30, passed: true },
        { expectation: 'not_null', columns: ['user_id'], expected: 0, observed: { nulls: 0 }, passed: true },
      ],
      details: { source: { kind: 'csv', path: 'data/events-*.csv', files: ['data/events-2026-01-01.csv'] } },
      badRowsSql: `SELECT 'events.csv' AS source, 'line' AS unit, 17::BIGINT AS line, 'amount: "abc" is not a number' AS reason, 'u17,2026-01-01,abc' AS raw`,
      badRowsRelativeTo: 'datasets',
    })
    await seedVersion(datasets, 'churn_labels', `SELECT 'u1' AS user_id, TIMESTAMPTZ '2026-01-05 00:00:00+00' AS label_ts, true AS churned`)
    await seedVersion(datasets, 'churn_training', `SELECT 'u1' AS user_id, true AS churned, 7.5 AS user_activity__spend_7d`, {
      producedKind: 'features.training_set',
      inputs: [{ dataset: 'churn_labels', version: 1 }, { feature_view: 'user_activity', definition_version: 1 }],
    })
    await seedVersion(datasets, 'hostile', `SELECT ${sql(HOSTILE)} AS ${ident(HOSTILE)}, NULL::VARCHAR AS empty`, {
      expectations: [{ expectation: HOSTILE, expected: HOSTILE, observed: HOSTILE, passed: false }],
      badRowsSql: `SELECT 1::BIGINT AS line, ${sql(HOSTILE)} AS reason`,
    })
    await seedFeatureView(db, {
      name: 'user_activity',
      definitions: [{
        definition: { entity: ['user_id'], source: 'events', timestamp: 'ts', ttl_ms: 2592000000, online: true, features: [{ name: 'spend_7d', agg: 'sum', column: 'amount', window_ms: 604800000 }, { name: 'events_1d', agg: 'count', column: null, window_ms: 86400000 }] },
        source: 'feature_view: user_activity\nentity: [user_id]\nsource: events\n',
      }],
      intervals: [
        { definitionVersion: 1, start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z', rows: 24, onlineRows: 24, sourceDataset: 'events', sourceVersion: 1 },
        { definitionVersion: 1, start: '2026-01-02T00:00:00Z', end: '2026-01-03T00:00:00Z', rows: 30, onlineRows: 30, sourceDataset: 'events', sourceVersion: 1 },
        { definitionVersion: 1, start: '2026-01-05T00:00:00Z', end: '2026-01-06T00:00:00Z', rows: 30, onlineRows: 30, sourceDataset: 'events', sourceVersion: 1 },
      ],
      online: 30,
    })
    ;({ page, base } = await suite.open({ db, user: 'viewer_vic', at: '/#/datasets', web: { data: { dir }, statePollMs: 250 } }))
  })

  test('the Datasets list links every dataset, from the top navigation', async () => {
    await page.waitForSelector('#dataset-table tr[data-dataset="events"]')
    const names = await page.locator('#dataset-table tr[data-dataset]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-dataset')))
    assert.deepEqual(names, ['churn_labels', 'churn_training', 'events', 'hostile'])
    await page.click('#nav-dags')
    await page.waitForSelector('#view h1:text("DAGs")')
    assert.equal(await page.getAttribute('#nav-dags', 'aria-current'), 'page')
    await page.click('#nav-datasets')
    assert.equal(await page.getAttribute('#nav-datasets', 'aria-current'), 'page')
    assert.equal(await page.getAttribute('#nav-dags', 'aria-current'), null)
    await page.click('#dataset-table a:text("churn_training")')
    await page.waitForSelector('#dataset-lineage svg.lineage-graph')
  })

  test('a training set shows its lineage back to the source; a click on the feature view opens it', async () => {
    const nodes = await page.locator('#dataset-lineage g.lineage-node').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')).sort())
    assert.deepEqual(nodes, ['dataset:churn_labels@1', 'dataset:churn_training@1', 'dataset:events@1', 'feature_view:user_activity@1', 'source:events@1'])
    const edges = await page.locator('#dataset-lineage path.edge').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-from')} -> ${e.getAttribute('data-to')}`).sort())
    assert.deepEqual(edges, [
      'dataset:churn_labels@1 -> dataset:churn_training@1',
      'dataset:events@1 -> feature_view:user_activity@1',
      'feature_view:user_activity@1 -> dataset:churn_training@1',
      'source:events@1 -> dataset:events@1',
    ])
    assert.match((await page.textContent('#dataset-lineage g[data-id="source:events@1"]')) ?? '', /csv data\/events-\*\.csv/)
    assert.equal(await page.getAttribute('#dataset-lineage g.current', 'data-id'), 'dataset:churn_training@1')
    assert.match((await page.textContent('#dataset-producer')) ?? '', /features\.training_set by seed/)
    await page.click('#dataset-lineage g[data-id="feature_view:user_activity@1"]')
    await page.waitForSelector('#feature-timeline svg.timeline')
    assert.match(page.url(), /#\/features\/user_activity$/)
  })

  test('a feature view: definition, intervals on a timeline with the gap marked, online rows', async () => {
    assert.equal(await page.locator('#feature-timeline rect.tl-bar').count(), 3)
    const gaps = await page.locator('#feature-timeline rect.tl-gap').evaluateAll((els) => els.map((e) => [e.getAttribute('data-start'), e.getAttribute('data-end')]))
    assert.deepEqual(gaps, [['2026-01-03T00:00:00.000Z', '2026-01-05T00:00:00.000Z']])
    const gapBox = await page.locator('#feature-timeline rect.tl-gap').boundingBox()
    assert.ok(gapBox && gapBox.width > 20, `the gap is visible: ${JSON.stringify(gapBox)}`)
    assert.match((await page.textContent('#feature-gaps')) ?? '', /1 gap:/)
    assert.match((await page.textContent('#feature-online-rows')) ?? '', /^30 entities online$/)
    const features = await page.locator('#feature-table tr[data-feature]').evaluateAll((rows) => rows.map((r) => r.textContent))
    assert.deepEqual(features, ['spend_7dsumamount7d', 'events_1dcount—1d'])
    assert.match((await page.textContent('#feature-source')) ?? '', /feature_view: user_activity/)
    await page.click('#nav-features')
    await page.waitForSelector('#feature-view-table tr[data-view="user_activity"]')
    assert.match((await page.textContent('#feature-view-table tr[data-view="user_activity"]')) ?? '', /30$/)
  })

  test('a source dataset: schema, expectation report, quarantined rows and a preview of its rows', async () => {
    await page.goto(`${base}/#/datasets/events`)
    await page.waitForSelector('#bad-rows-table')
    const schema = await page.locator('#dataset-schema tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)))
    assert.deepEqual(schema, [['user_id', 'string'], ['ts', 'timestamp'], ['amount', 'number']])
    const checks = await page.locator('#dataset-expectations tr.expectation').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-passed')))
    assert.deepEqual(checks, ['true', 'true'])
    assert.match((await page.textContent('#dataset-expectations')) ?? '', /not_null \(user_id\)/)
    assert.equal(await page.textContent('#bad-rows-count'), '1 row')
    const bad = await page.locator('#bad-rows-table tbody td').evaluateAll((cells) => cells.map((c) => c.textContent))
    assert.deepEqual(bad, ['events.csv', 'line', '17', 'amount: "abc" is not a number', 'u17,2026-01-01,abc'])
    const firstRow = await page.locator('#rows-table tbody tr').first().evaluate((r) => [...r.querySelectorAll('td')].map((td) => td.textContent))
    assert.deepEqual(firstRow, ['u0', '2026-01-01T00:00:00.000Z', '0.0'])
    assert.equal(await page.locator('#rows-table tbody tr').count(), 20)
    // A source dataset's graph starts at the files its ingest read.
    await page.waitForSelector('#dataset-lineage g[data-id="source:events@1"]')
  })

  test('a version whose run was pruned names the run as text, says it is gone and links nowhere', async () => {
    // `cairn db prune` deletes runs, never the versions they made: the version keeps the run's ids.
    await db.query(`UPDATE cairn.dataset_version SET run_id = 'labels__scheduled__20250101T0000Z', task_id = 'load' WHERE dataset = 'churn_labels'`)
    await page.goto(`${base}/#/datasets/churn_labels`)
    await page.waitForSelector('#dataset-producer .producer-pruned')
    assert.equal(await page.textContent('#dataset-producer'), 'ingest: labels__scheduled__20250101T0000Z / load (run pruned)')
    assert.equal(await page.locator('#view a.producer-link').count(), 0)
  })

  test('column names, values and reports that look like HTML are shown as text', async () => {
    await page.goto(`${base}/#/datasets/hostile`)
    await page.waitForSelector('#rows-table')
    await page.waitForSelector('#bad-rows-table')
    assert.equal(await page.locator('#view img').count(), 0)
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined)
    assert.equal(await page.textContent('#rows-table thead th'), HOSTILE)
    assert.equal(await page.textContent('#rows-table tbody td'), HOSTILE)
    assert.equal(await page.textContent('#dataset-schema tbody td.col-name'), HOSTILE)
    assert.equal(await page.getAttribute('#rows-table tbody td:nth-child(2)', 'class'), 'null')
    assert.match((await page.textContent('#dataset-expectations')) ?? '', /onerror/)
    assert.match((await page.textContent('#bad-rows-table')) ?? '', /onerror/)
  })

  test('dark theme, and readable at 400 px', async () => {
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.goto(`${base}/#/datasets/churn_training`)
    await page.waitForSelector('#dataset-lineage svg.lineage-graph')
    const background: string = await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.querySelector('.card')).backgroundColor)
    const [r, g, b] = background.match(/\d+/g)!.map(Number)
    assert.ok((0.2126 * r! + 0.7152 * g! + 0.0722 * b!) / 255 < 0.2, `card background ${background}`)
    await page.screenshot({ path: join(ARTIFACTS, 'datasets-dark-training.png'), fullPage: true })
    await page.goto(`${base}/#/features/user_activity`)
    await page.waitForSelector('#feature-timeline svg.timeline')
    await page.screenshot({ path: join(ARTIFACTS, 'datasets-dark-feature-view.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })

    await page.setViewportSize({ width: 400, height: 800 })
    for (const [hash, ready] of [['#/datasets', '#dataset-table tr'], ['#/datasets/events', '#bad-rows-table'], ['#/datasets/churn_training', 'svg.lineage-graph'], ['#/features', '#feature-view-table tr'], ['#/features/user_activity', 'svg.timeline']] as const) {
      await page.goto(`${base}/${hash}`)
      await page.waitForSelector(ready)
      const overflow = await overflowsViewport(page, '.table-scroll, .graph-scroll, .timeline-scroll')
      await page.screenshot({ path: join(ARTIFACTS, `datasets-400-${hash.replace(/[#/]+/g, '-').replace(/^-|-$/g, '')}.png`), fullPage: true })
      assert.equal(overflow, undefined, hash)
    }
    // The timeline fits the narrow screen instead of scrolling sideways.
    const timeline = await page.locator('svg.timeline').boundingBox()
    assert.ok(timeline && timeline.width <= 400, `timeline width ${timeline?.width}`)
    await page.setViewportSize({ width: 1400, height: 900 })
    assert.deepEqual(suite.pageErrors, [])
  })
})

function sql(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

function ident(text: string): string {
  return `"${text.replaceAll('"', '""')}"`
}
