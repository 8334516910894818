/**
 * MetricsStore's batches as they land in the request table: rows go several
 * to a statement with ids the writer gives them, so each batch size around a
 * full statement (ROWS_PER_STATEMENT) is checked row by row against what was
 * written, after another writer's rows.
 */
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { ROWS_PER_STATEMENT } from '../../collector/src/store/request-insert.js'
import {
  MetricsStore,
  rebuildRollups,
  type EndpointState,
  type PendingRequest,
} from 'routemeter/writer'
import { removeTempDirs, tempDatabase } from './helpers.js'

afterAll(removeTempDirs)

const START = Date.UTC(2026, 10, 3, 9, 0)

function endpoint(route: string): EndpointState {
  return { id: undefined, method: 'GET', route, level: 1, pendingLastRequested: 0 }
}

interface StoredRow {
  id: number
  route: string
  time: number
  duration_us: number
  status: number
  version: string
  user: string | null
  ip: string | null
  aborted: number
  node: string
}

describe('MetricsStore', () => {
  it('writes every request of batches of any size as given, with ids after the rows already there', () => {
    const path = tempDatabase()
    const endpoints = [endpoint('/a'), endpoint('/b/:id')]
    const written: Array<Omit<StoredRow, 'id'>> = []
    let time = START
    const batchOf = (size: number, version: string, node: string): PendingRequest[] =>
      Array.from({ length: size }, (_, i) => {
        time += 1 + (i % 7)
        const request: PendingRequest = {
          endpoint: endpoints[i % 2]!,
          time,
          durationUs: 1000 + ((i * 7919) % 50_000),
          status: i % 11 === 0 ? 500 : i % 5 === 0 ? 404 : 200,
          group: i % 3 === 0 ? null : `user-${i % 4}`,
          ip: i % 4 === 0 ? null : `198.51.100.${i % 9}`,
          aborted: i % 13 === 0 ? 1 : 0,
        }
        written.push({
          route: request.endpoint.route,
          time,
          duration_us: request.durationUs,
          status: request.status,
          version,
          user: request.group,
          ip: request.ip,
          aborted: request.aborted,
          node,
        })
        return request
      })
    // A first writer's rows, then a second's: sizes below, at and past a full statement.
    const n = ROWS_PER_STATEMENT
    for (const [version, node, sizes] of [
      ['1.0.0', 'web-1', [5]],
      ['1.1.0', 'web-2', [0, 1, n - 1, n, n + 1, 3 * n + 5]],
    ] as const) {
      for (const e of endpoints) e.id = undefined
      const store = new MetricsStore(
        path,
        { name: version, source: 'option' },
        START,
        undefined,
        node,
      )
      for (const size of sizes) store.write(batchOf(size, version, node), [])
      store.close()
    }

    const db = new Database(path)
    const rows = db
      .prepare(
        `SELECT r.id, e.route, r.time, r.duration_us, r.status, v.name AS version, u.name AS user,
                c.address AS ip, r.aborted, n.name AS node
         FROM request r JOIN endpoint e ON e.id = r.endpoint_id JOIN version v ON v.id = r.version_id
         LEFT JOIN user_group u ON u.id = r.user_group_id LEFT JOIN client_ip c ON c.id = r.client_ip_id
         JOIN node n ON n.id = r.node_id ORDER BY r.id`,
      )
      .all() as StoredRow[]
    expect(rows.map(({ id: _id, ...row }) => row)).toEqual(written)
    expect(rows.map((row) => row.id)).toEqual(rows.map((_, i) => i + 1))
    // The rollups the writer counted from memory with those ids equal a count from the table.
    const rollups = (): unknown[] =>
      db.prepare('SELECT * FROM rollup_hour ORDER BY endpoint_id, hour, version_id, node_id').all()
    const counted = rollups()
    rebuildRollups(db)
    expect(rollups()).toEqual(counted)
    db.close()
  })
})
