/**
 * A small bookstore API on Express 5, recorded by Routemeter.
 *
 *   node collector/examples/express/app.js
 *
 * Environment: PORT (default 3000; 0 picks a free one), ROUTEMETER_DB (default
 * ./metrics.db), APP_VERSION (default: git commit, else package.json version).
 * Callers authenticate with `Authorization: Bearer <token>` (see ../shared/data.js).
 */
import express from 'express'
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

class HttpError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

export function createApp({
  database = process.env.ROUTEMETER_DB ?? './metrics.db',
  version = process.env.APP_VERSION || undefined,
} = {}) {
  const app = express()
  // The two lines: everything below is timed and recorded per endpoint, per user.
  const metrics = bind(app, { database, version, groupBy: (req) => req.user?.name })
  const releaseNumber = release(metrics.version.name)

  const random = seeded(7)
  const authors = Array.from({ length: 200 }, (_, i) => ({ id: i + 1, name: title(random, 2) }))
  const books = Array.from({ length: 5000 }, (_, i) => ({
    id: i + 1,
    title: title(random),
    authorId: 1 + Math.floor(random() * authors.length),
    price: Math.round(500 + random() * 4500) / 100,
    stock: Math.floor(random() * 40),
    reviews: [],
  }))
  const orders = new Map()
  let nextOrderId = 1

  app.use(express.json())
  app.use((req, _res, next) => {
    req.user = userOfAuthorization(req.get('authorization'))
    next()
  })
  const signedIn = (req, _res, next) =>
    next(req.user === undefined ? new HttpError(401, 'sign in first') : undefined)
  const findBook = (id) => {
    const book = books[Number(id) - 1]
    if (book === undefined) throw new HttpError(404, `no book ${id}`)
    return book
  }

  app.get('/health', (_req, res) => {
    res.json({ ok: true })
  })

  app.post('/api/login', async (req, res) => {
    await sleep(30) // password hashing
    const user = userByPassword(req.body?.name, req.body?.password)
    if (user === undefined) throw new HttpError(401, 'wrong name or password')
    res.json({ token: user.token })
  })

  app.get('/api/books', async (req, res) => {
    const limit = Math.min(100, Number(req.query.limit ?? 20))
    const page = Math.max(1, Number(req.query.page ?? 1))
    await sleep(2)
    res.json(books.slice((page - 1) * limit, page * limit))
  })

  app.get('/api/books/search', async (req, res) => {
    const q = String(req.query.q ?? '').toLowerCase()
    if (q.length < 2) throw new HttpError(400, 'q needs at least 2 characters')
    await sleep(5)
    // Release 1.1 added fuzzy matching: better results, slower search.
    const hits =
      releaseNumber >= 1.1
        ? books.filter((b) =>
            b.title
              .toLowerCase()
              .split(' ')
              .some((w) => w.includes(q.slice(0, 3))),
          )
        : books.filter((b) => b.title.toLowerCase().includes(q))
    if (releaseNumber >= 1.1) score(hits.length, 40)
    res.json(hits.slice(0, 20))
  })

  app.get('/api/books/:bookId', async (req, res) => {
    await sleep(1)
    res.json(findBook(req.params.bookId))
  })

  app.post('/api/books', signedIn, async (req, res) => {
    if (!req.user.admin) throw new HttpError(403, 'only admins add books')
    if (typeof req.body?.title !== 'string') throw new HttpError(422, 'title is required')
    await sleep(8)
    const book = { id: books.length + 1, title: req.body.title, authorId: 1, price: 10, stock: 0 }
    books.push({ ...book, reviews: [] })
    res.status(201).json(book)
  })

  // A nested router: /api/books/:bookId/reviews
  const reviews = express.Router({ mergeParams: true })
  reviews.get('/', (req, res) => {
    res.json(findBook(req.params.bookId).reviews.slice(-20))
  })
  reviews.post('/', signedIn, async (req, res) => {
    const rating = Number(req.body?.rating)
    if (!(rating >= 1 && rating <= 5)) throw new HttpError(400, 'rating must be 1 to 5')
    const book = findBook(req.params.bookId)
    await sleep(4)
    const review = { user: req.user.name, rating, at: Date.now() }
    book.reviews.push(review)
    res.status(201).json(review)
  })
  app.use('/api/books/:bookId/reviews', reviews)

  app.get('/api/authors/:authorId', async (req, res) => {
    const author = authors[Number(req.params.authorId) - 1]
    if (author === undefined) throw new HttpError(404, 'no such author')
    await sleep(3)
    res.json({ ...author, books: books.filter((b) => b.authorId === author.id).slice(0, 10) })
  })

  // Slow, and slower for users with a long history: the cost depends on the user.
  app.get('/api/users/:name/recommendations', signedIn, (req, res) => {
    if (req.params.name !== req.user.name) throw new HttpError(403, 'not your recommendations')
    // Release 1.1 scores only the latest 1000 items of a history.
    const history = releaseNumber >= 1.1 ? Math.min(req.user.history, 1000) : req.user.history
    const total = score(history, 1500)
    res.json({ user: req.user.name, picks: books.slice(total % 4000, (total % 4000) + 5) })
  })

  // The payment provider fails now and then.
  app.post('/api/orders', signedIn, async (req, res) => {
    const items = Array.isArray(req.body?.items) ? req.body.items : []
    if (items.length === 0) throw new HttpError(422, 'an order needs items')
    for (const id of items) findBook(id)
    await sleep(15 + Math.random() * 30)
    if (Math.random() < 0.06) throw new HttpError(502, 'the payment provider did not answer')
    const order = { id: nextOrderId++, user: req.user.name, items, status: 'paid' }
    orders.set(order.id, order)
    res.status(201).json(order)
  })

  const findOrder = (req) => {
    const order = orders.get(Number(req.params.orderId))
    if (order === undefined) throw new HttpError(404, 'no such order')
    if (order.user !== req.user.name) throw new HttpError(403, 'not your order')
    return order
  }
  app.get('/api/orders/:orderId', signedIn, async (req, res) => {
    await sleep(2)
    res.json(findOrder(req))
  })
  app.delete('/api/orders/:orderId', signedIn, async (req, res) => {
    const order = findOrder(req)
    if (order.status === 'shipped') throw new HttpError(409, 'shipped already')
    await sleep(6)
    orders.delete(order.id)
    res.status(204).end()
  })

  app.get('/api/stock', signedIn, (_req, res) => {
    res.json(books.filter((b) => b.stock < 3).map((b) => ({ id: b.id, stock: b.stock })))
  })

  app.use((error, _req, res, _next) => {
    const status = error.status ?? error.statusCode ?? 500
    if (status >= 500 && error.status === undefined) console.error(error)
    res.status(status).json({ error: error.message })
  })

  return { app, metrics }
}

// Run directly: listen on loopback.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { app, metrics } = createApp()
  const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    const { port } = server.address()
    console.log(
      `express example listening on http://127.0.0.1:${port} ` +
        `(version ${metrics.version.name}, metrics in ${metrics.database})`,
    )
  })
}
