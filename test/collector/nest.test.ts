/**
 * NestJS bound with bind(app), on the Express and the Fastify platform: a
 * real Nest application on port 0 with a global prefix, URI versioning, a
 * guard, thrown HTTP exceptions and an exception filter. The templates are
 * those Nest declares (/api/v1/cats/:id), the statuses those the client got.
 * Decorators are applied as functions (the test runs without TypeScript's
 * legacy decorators).
 */
import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import {
  Catch,
  Controller,
  Get,
  HttpException,
  Module,
  Param,
  Post,
  UseFilters,
  UseGuards,
  VersioningType,
  type ArgumentsHost,
  type ExceptionFilter,
  type INestApplication,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, UNMATCHED_ROUTE } from 'routemeter'
import {
  defer,
  readEndpoints,
  readRequests,
  removeTempDirs,
  request,
  tempDatabase,
  waitFor,
} from './helpers.js'

afterAll(removeTempDirs)

class CatsController {
  findAll(): string[] {
    return ['tom', 'felix']
  }
  findOne(id: string): { id: string } {
    return { id }
  }
  create(): { created: boolean } {
    return { created: true }
  }
  secret(): string {
    return 'never'
  }
  teapot(): never {
    throw new HttpException('short and stout', 418)
  }
  boom(): never {
    throw new Error('boom')
  }
  refused(): never {
    throw new Error('refused')
  }
}

/** Answers 422 for what it catches, as an app's own exception filter would. */
class RefuseFilter implements ExceptionFilter {
  catch(_error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<{
      status?: (code: number) => { send(body: string): void }
      code?: (code: number) => { send(body: string): void }
    }>()
    // Express's response has status(), Fastify's reply code().
    const withStatus = reply.code?.bind(reply) ?? reply.status!.bind(reply)
    withStatus(422).send('refused by the filter')
  }
}

function decorate(): void {
  const proto = CatsController.prototype
  const on = (decorator: MethodDecorator, name: keyof CatsController) =>
    decorator(proto, name, Object.getOwnPropertyDescriptor(proto, name)!)
  on(Get(), 'findAll')
  on(Get(':id'), 'findOne')
  Param('id')(proto, 'findOne', 0)
  on(Post(), 'create')
  on(Get('admin/secret'), 'secret')
  on(UseGuards({ canActivate: () => false }), 'secret')
  on(Get('errors/teapot'), 'teapot')
  on(Get('errors/boom'), 'boom')
  on(Get('errors/refused'), 'refused')
  on(UseFilters(new RefuseFilter()), 'refused')
  Catch()(RefuseFilter)
  Controller({ path: 'cats', version: '1' })(CatsController)
}
decorate()

class AppModule {}
Module({ controllers: [CatsController] })(AppModule)

async function start(platform: 'express' | 'fastify'): Promise<INestApplication> {
  const app =
    platform === 'express'
      ? await NestFactory.create(AppModule, { logger: false })
      : await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false })
  app.setGlobalPrefix('api')
  app.enableVersioning({ type: VersioningType.URI })
  return app
}

describe.each(['express', 'fastify'] as const)('NestJS on %s', (platform) => {
  it("records Nest's templates (global prefix, version, controller, method path) and the statuses guards and filters gave", async () => {
    const database = tempDatabase()
    const app = await start(platform)
    const handle = bind(app, {
      database,
      version: 'nest-1',
      groupBy: (req) => (req as { headers: Record<string, string> }).headers['x-user'],
    })
    defer(() => handle.close())
    await app.listen(0, '127.0.0.1')
    defer(() => app.close())
    const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`

    // Routes are listed once the app listens, before any request.
    const listed = await waitFor('discovered endpoints', () => {
      const rows = readEndpoints(database)
      return rows.length > 0 && rows.map((e) => `${e.method} ${e.route}`)
    })
    expect(listed).toEqual(
      expect.arrayContaining([
        'GET /api/v1/cats',
        'GET /api/v1/cats/:id',
        'POST /api/v1/cats',
        'GET /api/v1/cats/admin/secret',
      ]),
    )
    // Nest's own not-found route is not an endpoint of the app.
    expect(listed.filter((key) => key.includes('*'))).toEqual([])

    const replies = [
      await request(`${url}/api/v1/cats`, { headers: { 'x-user': 'ada' } }),
      await request(`${url}/api/v1/cats/7`),
      await request(`${url}/api/v1/cats`, { method: 'POST' }),
      await request(`${url}/api/v1/cats/admin/secret`),
      await request(`${url}/api/v1/cats/errors/teapot`),
      await request(`${url}/api/v1/cats/errors/boom`),
      await request(`${url}/api/v1/cats/errors/refused`),
      await request(`${url}/api/v2/cats`),
    ]
    expect(replies.map((r) => r.status)).toEqual([200, 200, 201, 403, 418, 500, 422, 404])
    expect(JSON.parse(replies[1]!.body)).toEqual({ id: '7' })
    handle.flush()
    const rows = readRequests(database)
    expect(rows.map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /api/v1/cats 200',
      'GET /api/v1/cats/:id 200',
      'POST /api/v1/cats 201',
      'GET /api/v1/cats/admin/secret 403',
      'GET /api/v1/cats/errors/teapot 418',
      'GET /api/v1/cats/errors/boom 500',
      'GET /api/v1/cats/errors/refused 422',
      `GET ${UNMATCHED_ROUTE} 404`,
    ])
    expect(rows[0]).toMatchObject({ group: 'ada', version: 'nest-1', ip: '127.0.0.1' })
  })
})
