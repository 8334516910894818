/*
 * What every view needs besides its own reads: the store's reader, the clock,
 * and the arguments turned into endpoints, versions, nodes and a Scope.
 * Arguments arrive validated (api/validate.ts).
 */
import { parseTags } from 'routemeter/compare'
import { NO_ID, type EndpointRow, type VersionRow } from 'routemeter/schema'
import type { RangeArgs, StatusArgs, Version } from '../../api/contract.js'
import { UNKNOWN_NODE } from '../../api/contract.js'
import { badArgument } from '../../api/errors.js'
import type { MetricsReader, Scope } from './reader.js'

export function zeros(length: number): number[] {
  return new Array<number>(length).fill(0)
}

function version(row: VersionRow): Version {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    firstSeen: row.first_seen,
    tags: parseTags(row.tags),
  }
}

export class ViewContext {
  /** SQLite's (or another store's) word on damaged pages met while reading requests, if any */
  damage: string | undefined

  constructor(
    readonly reader: MetricsReader,
    readonly now: () => number,
  ) {}

  /** The endpoints a query covers: the selection (unknown ids ignored), or all. */
  scope(args: RangeArgs): EndpointRow[] {
    const rows = this.reader.endpoints()
    if (args.endpointIds === undefined || args.endpointIds.length === 0) return rows
    const selected = new Set(args.endpointIds)
    return rows.filter((row) => selected.has(row.id))
  }

  /** One endpoint that must exist. */
  endpointRow(endpointId: number): EndpointRow {
    const row = this.reader.endpoint(endpointId)
    if (row === undefined) {
      throw badArgument(`there is no endpoint with id ${endpointId} in this file`)
    }
    return row
  }

  /** Whether a view covers every endpoint of the file (no selection, no one endpoint). */
  everyEndpoint(args: StatusArgs): boolean {
    return args.endpointId === undefined && (args.endpointIds?.length ?? 0) === 0
  }

  /** `endpointId` when given, else the range's selection. */
  optionalEndpointScope(args: StatusArgs): EndpointRow[] {
    return args.endpointId === undefined ? this.scope(args) : [this.endpointRow(args.endpointId)]
  }

  /** The given version ids as versions, in the order they appeared. */
  versionList(ids: Iterable<number>): Version[] {
    const wanted = new Set(ids)
    return this.reader
      .versions()
      .filter((row) => wanted.has(row.id))
      .map(version)
  }

  /** Node ids by name. */
  nodeIds(): Map<string, number> {
    return new Map(this.reader.nodes().map((row) => [row.name, row.id]))
  }

  /** Names of the nodes, UNKNOWN_NODE last if some requests have none. */
  nodeNames(): string[] {
    const names = [...this.nodeIds().keys()].sort()
    return this.reader.hasRequestsWithoutNode() ? [...names, UNKNOWN_NODE] : names
  }

  /** The endpoints and the range's node filter as a Scope (unknown node names match nothing). */
  scopeOf(endpoints: EndpointRow[], args: RangeArgs): Scope {
    const endpointIds = endpoints.map((e) => e.id)
    if (args.nodes === undefined || args.nodes.length === 0) {
      return { endpointIds, nodeIds: undefined }
    }
    const ids = this.nodeIds()
    const nodeIds = args.nodes.flatMap((name) =>
      name === UNKNOWN_NODE ? [NO_ID] : ids.has(name) ? [ids.get(name)!] : [],
    )
    return { endpointIds, nodeIds }
  }
}
