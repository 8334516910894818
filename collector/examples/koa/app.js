/**
 * A small project tracker API on Koa 3 with @koa/router, recorded by Routemeter.
 *
 *   node collector/examples/koa/app.js
 *
 * Environment: PORT (default 3001; 0 picks a free one), ROUTEMETER_DB (default
 * ./metrics.db), APP_VERSION (default: git commit, else package.json version).
 * Callers authenticate with `Authorization: Bearer <token>` (see ../shared/data.js).
 */
import Router from '@koa/router'
import Koa from 'koa'
import { pathToFileURL } from 'node:url'
import { bind } from 'routemeter'
import {
  release,
  score,
  seeded,
  sleep,
  title,
  userByPassword,
  userOfAuthorization,
} from '../shared/data.js'

/** The request's JSON body (Koa has no body parser of its own). */
async function jsonBody(ctx) {
  if (!ctx.is('application/json')) return {}
  let text = ''
  for await (const chunk of ctx.req) text += chunk
  try {
    return text === '' ? {} : JSON.parse(text)
  } catch {
    ctx.throw(400, 'the body is not JSON')
  }
}

export function createApp({
  database = process.env.ROUTEMETER_DB ?? './metrics.db',
  version = process.env.APP_VERSION || undefined,
} = {}) {
  const app = new Koa()
  // The two lines: everything below is timed and recorded per endpoint, per user.
  const metrics = bind(app, { database, version, groupBy: (ctx) => ctx.state.user?.name })
  const releaseNumber = release(metrics.version.name)

  const random = seeded(11)
  const projects = Array.from({ length: 300 }, (_, i) => ({
    id: i + 1,
    name: title(random, 2),
    owner: ['acme-corp', 'globex', 'initech', 'umbrella', 'hooli'][i % 5],
    tasks: Array.from({ length: 5 + Math.floor(random() * 60) }, (_, j) => ({
      id: j + 1,
      title: title(random, 4),
      done: random() < 0.4,
      points: 1 + Math.floor(random() * 8),
    })),
  }))

  app.use(async (ctx, next) => {
    ctx.state.user = userOfAuthorization(ctx.get('authorization'))
    await next()
  })
  app.use(async (ctx, next) => {
    try {
      await next()
    } catch (error) {
      ctx.status = error.status ?? 500
      ctx.body = { error: error.expose ? error.message : 'internal error' }
      if (ctx.status >= 500) ctx.app.emit('error', error, ctx)
    }
  })
  // Koa prints every 5xx error without a listener; a real app would send it to its logger.
  app.on('error', () => {})
  const signedIn = async (ctx, next) => {
    if (ctx.state.user === undefined) ctx.throw(401, 'sign in first')
    await next()
  }
  const findProject = (ctx) => {
    const project = projects[Number(ctx.params.projectId) - 1]
    if (project === undefined) ctx.throw(404, 'no such project')
    return project
  }

  const router = new Router({ prefix: '/api' })

  router.post('/login', async (ctx) => {
    const body = await jsonBody(ctx)
    await sleep(30) // password hashing
    const user = userByPassword(body.name, body.password)
    if (user === undefined) ctx.throw(401, 'wrong name or password')
    ctx.body = { token: user.token }
  })

  router.get('/projects', signedIn, async (ctx) => {
    await sleep(3)
    ctx.body = projects.slice(0, 50).map(({ id, name, owner }) => ({ id, name, owner }))
  })

  router.get('/projects/search', signedIn, async (ctx) => {
    const q = String(ctx.query.q ?? '').toLowerCase()
    if (q.length < 2) ctx.throw(400, 'q needs at least 2 characters')
    await sleep(6)
    const hits = projects.filter((p) => p.name.toLowerCase().includes(q))
    ctx.body = hits.map(({ id, name }) => ({ id, name }))
  })

  router.get('/projects/:projectId', signedIn, async (ctx) => {
    await sleep(2)
    const { tasks, ...project } = findProject(ctx)
    ctx.body = { ...project, taskCount: tasks.length }
  })

  router.post('/projects', signedIn, async (ctx) => {
    const body = await jsonBody(ctx)
    if (typeof body.name !== 'string' || body.name === '') ctx.throw(422, 'name is required')
    await sleep(10)
    const project = { id: projects.length + 1, name: body.name, owner: ctx.state.user.name }
    projects.push({ ...project, tasks: [] })
    ctx.status = 201
    ctx.body = project
  })

  // A nested router: /api/projects/:projectId/tasks
  const tasks = new Router()
  tasks.get('/', async (ctx) => {
    await sleep(2)
    ctx.body = findProject(ctx).tasks.slice(0, 100)
  })
  tasks.get('/:taskId', async (ctx) => {
    const task = findProject(ctx).tasks[Number(ctx.params.taskId) - 1]
    if (task === undefined) ctx.throw(404, 'no such task')
    await sleep(1)
    ctx.body = task
  })
  tasks.post('/', async (ctx) => {
    const body = await jsonBody(ctx)
    const project = findProject(ctx)
    if (typeof body.title !== 'string') ctx.throw(422, 'title is required')
    await sleep(5)
    const task = { id: project.tasks.length + 1, title: body.title, done: false, points: 1 }
    project.tasks.push(task)
    ctx.status = 201
    ctx.body = task
  })
  tasks.patch('/:taskId', async (ctx) => {
    const body = await jsonBody(ctx)
    const task = findProject(ctx).tasks[Number(ctx.params.taskId) - 1]
    if (task === undefined) ctx.throw(404, 'no such task')
    // Release 1.1 checks the project's permissions first: a slower update.
    await sleep(releaseNumber >= 1.1 ? 12 : 4)
    task.done = body.done === true
    ctx.body = task
  })
  router.use('/projects/:projectId/tasks', signedIn, tasks.routes(), tasks.allowedMethods())

  // Slow, and slower for users with more history: the cost depends on the user.
  router.get('/reports/burndown/:projectId', signedIn, async (ctx) => {
    const project = findProject(ctx)
    await sleep(10)
    const total = score(ctx.state.user.history, releaseNumber >= 1.1 ? 600 : 1000)
    ctx.body = { project: project.id, remaining: total % 100 }
  })

  // Delivers a webhook to a partner who fails now and then.
  router.post('/webhooks/dispatch', signedIn, async (ctx) => {
    await sleep(20 + Math.random() * 40)
    if (Math.random() < 0.05) throw new Error('the partner endpoint reset the connection')
    if (Math.random() < 0.03) ctx.throw(504, 'the partner endpoint timed out')
    ctx.status = 202
    ctx.body = { queued: true }
  })

  router.get('/me', signedIn, (ctx) => {
    ctx.body = { name: ctx.state.user.name, admin: ctx.state.user.admin }
  })

  app.use(router.routes())
  app.use(router.allowedMethods())
  return { app, metrics }
}

// Run directly: listen on loopback.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { app, metrics } = createApp()
  const server = app.listen(Number(process.env.PORT ?? 3001), '127.0.0.1', () => {
    const { port } = server.address()
    console.log(
      `koa example listening on http://127.0.0.1:${port} ` +
        `(version ${metrics.version.name}, metrics in ${metrics.database})`,
    )
  })
}
