/**
 * What the views must show, computed straight from the metrics file with
 * SQL, independently of the dashboard's own queries.
 */
import Database from 'better-sqlite3'

export const DAY = 86_400_000

export function startOfDay(time: number, utcOffsetMinutes = 0): number {
  const shift = utcOffsetMinutes * 60_000
  return Math.floor((time + shift) / DAY) * DAY - shift
}

export interface EndpointInfo {
  id: number
  method: string
  route: string
  name: string
  level: number
}

export class Expected {
  private readonly db: Database.Database

  constructor(path: string) {
    this.db = new Database(path, { readonly: true, fileMustExist: true })
  }

  close(): void {
    this.db.close()
  }

  endpoints(): EndpointInfo[] {
    return (
      this.db
        .prepare('SELECT id, method, route, monitor_level AS level FROM endpoint')
        .all() as Array<Omit<EndpointInfo, 'name'>>
    ).map((e) => ({ ...e, name: `${e.method} ${e.route}` }))
  }

  endpoint(name: string): EndpointInfo {
    const found = this.endpoints().find((e) => e.name === name)
    if (found === undefined) throw new Error(`no endpoint ${name}`)
    return found
  }

  count(from: number, to: number, endpointId?: number): number {
    return (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM request WHERE time >= ? AND time < ?${endpointId === undefined ? '' : ' AND endpoint_id = ?'}`,
        )
        .get(...(endpointId === undefined ? [from, to] : [from, to, endpointId])) as { n: number }
    ).n
  }

  /** requests per endpoint id in [from, to) */
  countsByEndpoint(from: number, to: number): Map<number, number> {
    const rows = this.db
      .prepare(
        'SELECT endpoint_id AS id, count(*) AS n FROM request WHERE time >= ? AND time < ? GROUP BY endpoint_id',
      )
      .all(from, to) as Array<{ id: number; n: number }>
    return new Map(rows.map((r) => [r.id, r.n]))
  }

  /** requests per status code in [from, to) */
  countsByStatus(from: number, to: number, endpointId?: number): Map<number, number> {
    const rows = this.db
      .prepare(
        `SELECT status, count(*) AS n FROM request WHERE time >= ? AND time < ?${endpointId === undefined ? '' : ' AND endpoint_id = ?'} GROUP BY status`,
      )
      .all(...(endpointId === undefined ? [from, to] : [from, to, endpointId])) as Array<{
      status: number
      n: number
    }>
    return new Map(rows.map((r) => [r.status, r.n]))
  }

  /** requests per hour of day (0-23) in the given offset */
  countsByHour(from: number, to: number, utcOffsetMinutes: number): number[] {
    const hours = Array.from({ length: 24 }, () => 0)
    const times = this.db
      .prepare('SELECT time FROM request WHERE time >= ? AND time < ?')
      .pluck()
      .all(from, to) as number[]
    for (const time of times) {
      const local = time + utcOffsetMinutes * 60_000
      hours[Math.floor((local % DAY) / 3_600_000)]! += 1
    }
    return hours
  }

  /** the `limit` busiest users (or IPs) of an endpoint, busiest first; null names are "(none)" */
  busiestClients(kind: 'user' | 'ip', endpointId: number, from: number, to: number, limit = 10) {
    const sql =
      kind === 'user'
        ? `SELECT coalesce(u.name, '(none)') AS name, count(*) AS n FROM request r
           LEFT JOIN user_group u ON u.id = r.user_group_id
           WHERE r.endpoint_id = ? AND r.time >= ? AND r.time < ? GROUP BY 1 ORDER BY n DESC, name`
        : `SELECT coalesce(c.address, '(none)') AS name, count(*) AS n FROM request r
           LEFT JOIN client_ip c ON c.id = r.client_ip_id
           WHERE r.endpoint_id = ? AND r.time >= ? AND r.time < ? GROUP BY 1 ORDER BY n DESC, name`
    return (
      this.db.prepare(sql).all(endpointId, from, to) as Array<{ name: string; n: number }>
    ).slice(0, limit)
  }

  /** versions with requests of the endpoint in range, in order of first appearance */
  versionsOf(
    endpointId: number,
    from: number,
    to: number,
  ): Array<{ name: string; firstSeen: number }> {
    return this.db
      .prepare(
        `SELECT v.name, v.first_seen AS firstSeen FROM version v
         WHERE EXISTS (SELECT 1 FROM request r WHERE r.version_id = v.id AND r.endpoint_id = ? AND r.time >= ? AND r.time < ?)
         ORDER BY v.first_seen, v.id`,
      )
      .all(endpointId, from, to) as Array<{ name: string; firstSeen: number }>
  }

  level(endpointId: number): number {
    return (
      this.db
        .prepare('SELECT monitor_level AS level FROM endpoint WHERE id = ?')
        .get(endpointId) as {
        level: number
      }
    ).level
  }
}

export function formatCount(value: number): string {
  return new Intl.NumberFormat('en-US').format(value)
}

/** A number as the UI writes it ('1,234') back to a number. */
export function parseCount(text: string | null): number {
  return Number((text ?? '').replace(/[^0-9.-]/g, ''))
}
