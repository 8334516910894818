import express from 'express'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, createCollector, type RoutemeterHandle } from 'routemeter'
import {
  defer,
  listen,
  openDb,
  readEndpoints,
  readRequests,
  removeTempDirs,
  request,
  tempDatabase,
  waitFor,
} from './helpers.js'

afterAll(removeTempDirs)

async function service(options: Parameters<typeof bind>[1]) {
  const app = express()
  const handle: RoutemeterHandle = bind(app, options)
  defer(() => handle.close())
  app.get('/a', (_req, res) => {
    res.send('a')
  })
  app.get('/b', (_req, res) => {
    res.send('b')
  })
  const { url } = await listen(app)
  const rowsOf = (route: string): number =>
    readRequests(options!.database!).filter((r) => r.route === route).length
  /** One request to `route`, written at once; true if it added a request row. */
  const recorded = async (route: string): Promise<boolean> => {
    const before = rowsOf(route)
    const reply = await request(url + route)
    if (route === '/a' || route === '/b') expect(reply.body).toBe(route.slice(1))
    else expect(reply.status).toBe(404)
    expect(handle.flush()).toBe(true)
    return rowsOf(route) > before
  }
  const endpoint = (route: string) =>
    readEndpoints(options!.database!).find((e) => e.route === route)!
  return { handle, url, rowsOf, recorded, endpoint }
}

/**
 * Repeats `attempt` (a request and a check of the file) until it returns true;
 * fails unless that happens within `ms` (the level poll runs every second by default).
 */
async function within(ms: number, what: string, attempt: () => Promise<boolean>): Promise<void> {
  await waitFor(what, attempt, ms, 50)
}

describe('monitoring levels set by another connection', () => {
  it('level 0 stops request rows within 2 s but keeps last_requested; level 1 brings them back', async () => {
    const database = tempDatabase()
    const svc = await service({ database })
    expect(await svc.recorded('/a')).toBe(true)
    expect(await svc.recorded('/b')).toBe(true)

    const desktop = openDb(database)
    const setLevel = desktop.prepare('UPDATE endpoint SET monitor_level = ? WHERE route = ?')
    setLevel.run(0, '/a')
    await within(2000, 'level 0 to be applied to GET /a', async () => !(await svc.recorded('/a')))

    // From now on: no rows for /a, rows for /b, and /a's last request time moves on.
    const rowsA = svc.rowsOf('/a')
    const lastBefore = svc.endpoint('/a').last_requested!
    const sentAt = Date.now()
    for (let i = 0; i < 5; i++) expect(await svc.recorded('/a')).toBe(false)
    expect(await svc.recorded('/b')).toBe(true)
    expect(svc.rowsOf('/a')).toBe(rowsA)
    const lastAfter = svc.endpoint('/a').last_requested!
    expect(lastAfter).toBeGreaterThanOrEqual(sentAt - 1)
    expect(lastAfter).toBeGreaterThanOrEqual(lastBefore)
    expect(svc.endpoint('/a').monitor_level).toBe(0)

    setLevel.run(1, '/a')
    await within(2000, 'level 1 to be applied to GET /a', () => svc.recorded('/a'))
    expect(await svc.recorded('/a')).toBe(true)
  })

  it('defaultLevel 0: endpoints are known with their last request, no request rows', async () => {
    const database = tempDatabase()
    const svc = await service({ database, defaultLevel: 0, levelPollInterval: 100 })
    const sentAt = Date.now()
    expect(await svc.recorded('/a')).toBe(false)
    expect(await svc.recorded('/b')).toBe(false)
    expect(await svc.recorded('/nowhere')).toBe(false)
    const endpoints = readEndpoints(database)
    expect(endpoints.map((e) => [e.method, e.route, e.monitor_level])).toEqual([
      ['GET', '/a', 0],
      ['GET', '/b', 0],
      ['GET', '(unmatched)', 0],
    ])
    for (const e of endpoints) expect(e.last_requested).toBeGreaterThanOrEqual(sentAt - 1)
    expect(readRequests(database)).toHaveLength(0)

    // The desktop turns one endpoint on.
    openDb(database).prepare("UPDATE endpoint SET monitor_level = 1 WHERE route = '/b'").run()
    await within(2000, 'level 1 to be applied to GET /b', () => svc.recorded('/b'))
    expect(await svc.recorded('/a')).toBe(false)
  })

  it('a level already in the file wins over defaultLevel when the collector starts', async () => {
    const database = tempDatabase()
    const first = await service({ database })
    expect(await first.recorded('/a')).toBe(true)
    first.handle.close()
    openDb(database).prepare("UPDATE endpoint SET monitor_level = 0 WHERE route = '/a'").run()

    const second = await service({ database, defaultLevel: 1 })
    expect(await second.recorded('/a')).toBe(false)
    expect(await second.recorded('/b')).toBe(true)
    expect(second.endpoint('/a').monitor_level).toBe(0)
  })

  it('applies to the plain http core too, within 2 s', async () => {
    const database = tempDatabase()
    const collector = createCollector({ database })
    defer(() => collector.close())
    const { url } = await listen(
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        collector.track(req, res)
        collector.setRoute(req, '/things/:id')
        res.end('thing')
      },
    )
    const rows = (): number => readRequests(database).length
    await request(`${url}/things/1`)
    collector.flush()
    expect(rows()).toBe(1)
    openDb(database).prepare('UPDATE endpoint SET monitor_level = 0').run()
    await within(2000, 'level 0 to be applied', async () => {
      const before = rows()
      await request(`${url}/things/2`)
      collector.flush()
      return rows() === before
    })
  })
})
