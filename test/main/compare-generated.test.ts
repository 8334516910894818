/**
 * The comparison on the traffic generator's planted changes: the generator
 * knows which release made which endpoint slower or faster (and by how
 * much). Each release is compared with the one before, by each test: every planted change
 * of 30% or more must get its verdict with the right sign; the endpoints a
 * release did not touch are counted, and the share called slower or faster
 * (false positives, or the generator's other effects: incidents, users whose
 * mix moves) is printed and bounded.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { compareReleases } from 'routemeter/compare'
import { afterAll, expect, it } from 'vitest'
import { generateMetricsFile } from '../../src-main/services/generator/index.js'
import { tempDir } from '../fixtures/metrics-files.js'

const temp = tempDir('routemeter-compare-generated-')
afterAll(() => temp.cleanup())

it("finds the generator's planted regressions and optimisations, release by release", () => {
  const path = join(temp.dir, 'generated.db')
  const summary = generateMetricsFile(path, {
    requests: 600_000,
    days: 90,
    end: Date.UTC(2026, 10, 20),
    seed: 5,
  })
  const db = new Database(path, { readonly: true })
  try {
    for (const test of ['mood', 'mann-whitney'] as const) {
      let planted = 0
      let found = 0
      let untouched = 0
      let called = 0
      let exact = 0
      let compared = 0
      const missed: string[] = []
      for (let v = 1; v < summary.versions.length; v++) {
        const before = summary.versions[v - 1]!
        const after = summary.versions[v]!
        const comparison = compareReleases(db, {
          baseline: { versions: [before.name] },
          candidate: { versions: [after.name] },
          test,
        })
        const effects = new Map(after.effects.map((e) => [e.endpoint, e]))
        for (const e of comparison.endpoints) {
          compared++
          if (e.exact) exact++
          if (e.verdict === 'too few requests') continue
          const key = `${e.method} ${e.route}`
          const effect = effects.get(key)
          if (effect !== undefined && Math.abs(Math.log(effect.factor)) >= Math.log(1.3)) {
            planted++
            const want = effect.factor > 1 ? 'slower' : 'faster'
            if (e.verdict === want) found++
            else
              missed.push(
                `${after.name} ${key}: ${effect.note} x${effect.factor.toFixed(2)}, got ${e.verdict}`,
              )
          } else if (effect === undefined) {
            untouched++
            if (e.verdict !== 'no change') called++
          }
        }
      }
      console.log(
        `compare on the generator (${test}): ${found}/${planted} planted changes found; ` +
          `${called}/${untouched} untouched endpoint-releases called slower or faster ` +
          `(${((100 * called) / Math.max(1, untouched)).toFixed(1)}%); ` +
          `${exact}/${compared} endpoint comparisons exact from raw rows`,
      )
      expect(planted, test).toBeGreaterThan(3)
      expect(missed, test).toEqual([])
      expect(called / untouched, test).toBeLessThan(0.1)
    }
  } finally {
    db.close()
  }
})
