/*
 * A monitoring level changed on a dataset goes to every source: local files
 * are written as the dashboard writes them, servers get
 * `POST /routemeter/levels`; each answers for itself.
 */
import { resolve } from 'node:path'
import Database from 'better-sqlite3'
import type { EndpointRow, MonitorLevel } from 'routemeter/schema'
import type { Endpoint, LevelChange, SourceLevelResult } from '../../api/contract.js'
import { badArgument, toApiError } from '../../api/errors.js'
import type { DashboardService } from '../dashboard.js'
import { toEndpoint, writeMonitorLevel } from '../database.js'
import type { Dataset } from './datasets.js'
import { openWritable } from './merge.js'
import { binding } from './pulls.js'
import { RemoteClient } from './remote.js'
import type { ServerList } from './server-list.js'

export async function setDatasetLevel(
  files: DashboardService,
  servers: ServerList,
  dataset: Dataset | null,
  endpointId: number,
  level: MonitorLevel,
): Promise<LevelChange> {
  if (dataset === null) {
    const endpoint = await files.setLevel({ endpointId, level })
    const source = { kind: 'file' as const, label: files.path ?? '', serverId: null }
    return { endpoint, sources: [{ source, accepted: true, message: null }] }
  }
  const named = readEndpoint(dataset.output, endpointId)
  const results: SourceLevelResult[] = []
  for (const ref of dataset.refs) {
    const source = servers.describe(ref)
    try {
      if (ref.kind === 'server') {
        const server = servers.get(ref.serverId)
        servers.requireRemote()
        await new RemoteClient(server.url, server.token).setLevel(named.method, named.route, level)
        const copy = servers.copyPath(ref.serverId)
        // The copy on screen says what the server now does, without a new pull.
        if (copy !== dataset.output) setLevelByName(copy, named.method, named.route, level)
      } else {
        setLevelByName(resolve(ref.path), named.method, named.route, level)
      }
      results.push({ source, accepted: true, message: null })
    } catch (error) {
      results.push({ source, accepted: false, message: toApiError(error).message })
    }
  }
  const endpoint = results.some((result) => result.accepted)
    ? writeMonitorLevel(dataset.output, endpointId, level)
    : named
  files.check()
  return { endpoint, sources: results }
}

/** An endpoint of one of our files (a copy or a merged dataset), as the API shows it. */
function readEndpoint(path: string, endpointId: number): Endpoint {
  const db = new Database(path, { readonly: true, fileMustExist: true, ...binding() })
  try {
    const row = db
      .prepare(
        'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint WHERE id = ?',
      )
      .get(endpointId) as EndpointRow | undefined
    if (row === undefined) {
      throw badArgument(`there is no endpoint with id ${endpointId} in the dataset`)
    }
    return toEndpoint(row)
  } finally {
    db.close()
  }
}

/** Sets a level in a metrics file by method and route (ids differ between files). */
function setLevelByName(path: string, method: string, route: string, level: MonitorLevel): void {
  const db = openWritable(path)
  let id: number | undefined
  try {
    id = db
      .prepare('SELECT id FROM endpoint WHERE method = ? AND route = ?')
      .pluck()
      .get(method, route) as number | undefined
  } finally {
    db.close()
  }
  if (id === undefined) throw badArgument(`${path} has no endpoint ${method} ${route}`)
  writeMonitorLevel(path, id, level)
}
