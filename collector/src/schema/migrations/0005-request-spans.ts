import type { MigrationDb } from '../migrate.js'
import { forgetRollupStatements, rollupWatermark } from '../../store/rollups/index.js'

/**
 * The request table loses its index on (endpoint_id, time), the writer's
 * dearest part and a third of the file (docs/benchmarks.md). What it served:
 * - the minutes of a range that no rollup holds whole: rollup_hour's new
 *   columns first_id and last_id bound the ids of the requests it counts,
 *   which readers then read as ranges of the request table's rowid;
 * - the latest errors: a partial index that holds only the requests that
 *   are errors (4xx, 5xx or aborted), a few percent of them.
 * The backfill takes one pass over the requests the rollups count.
 */
export function up(db: MigrationDb): void {
  forgetRollupStatements(db)
  const watermark = rollupWatermark(db)
  db.exec(`
    ALTER TABLE rollup_hour ADD COLUMN first_id INTEGER;
    ALTER TABLE rollup_hour ADD COLUMN last_id INTEGER;
  `)
  db.prepare(
    `UPDATE rollup_hour SET first_id = span.first_id, last_id = span.last_id
     FROM (SELECT endpoint_id, time / 3600000 AS hour, version_id, coalesce(node_id, 0) AS node_id,
                  min(id) AS first_id, max(id) AS last_id
           FROM request WHERE id <= ? GROUP BY 1, 2, 3, 4) AS span
     WHERE rollup_hour.endpoint_id = span.endpoint_id AND rollup_hour.hour = span.hour
       AND rollup_hour.version_id = span.version_id AND rollup_hour.node_id = span.node_id`,
  ).run(watermark)
  db.exec(`
    CREATE INDEX request_errors ON request (endpoint_id, time) WHERE status >= 400 OR aborted = 1;
    DROP INDEX request_endpoint_time;
  `)
  forgetRollupStatements(db)
}
