import Koa from 'koa'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, type RoutemeterHandle } from 'routemeter'
import { readGitTags } from '../../collector/src/core/version.js'
import {
  defer,
  listen,
  makeTempDir,
  readRequests,
  removeTempDirs,
  request,
  tempDatabase,
  withDb,
} from './helpers.js'

afterAll(removeTempDirs)

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: makeTempDir('routemeter-home-'),
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim()
}

/** A new repository with one commit on branch main; returns its folder. */
function repository(): string {
  const repo = makeTempDir('routemeter-repo-')
  git(repo, 'init', '-q', '-b', 'main')
  commit(repo, 'first')
  return repo
}

function commit(repo: string, message: string): string {
  writeFileSync(join(repo, 'file.txt'), `${message}\n`)
  git(repo, 'add', 'file.txt')
  git(repo, 'commit', '-q', '-m', message)
  return git(repo, 'rev-parse', 'HEAD')
}

/** Binds a Koa app, serves one request, and returns the version recorded for it. */
async function recordedVersion(
  options: Parameters<typeof bind>[1],
): Promise<{ handle: RoutemeterHandle; recorded: { version: string; source: string } }> {
  const app = new Koa()
  const handle = bind(app, options)
  defer(() => handle.close())
  app.use((ctx) => {
    ctx.body = 'ok'
  })
  const { url } = await listen(app)
  await request(url)
  handle.flush()
  const row = readRequests(options!.database!).at(-1)!
  return { handle, recorded: { version: row.version, source: row.version_source } }
}

/** Runs `fn` with the process's working directory set to `dir`. */
async function inDirectory<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = process.cwd()
  process.chdir(dir)
  try {
    return await fn()
  } finally {
    process.chdir(previous)
  }
}

describe('version from git', () => {
  it('reads a loose ref', async () => {
    const repo = repository()
    const sha = git(repo, 'rev-parse', 'HEAD')
    expect(existsSync(join(repo, '.git/refs/heads/main'))).toBe(true)
    const { handle, recorded } = await recordedVersion({
      database: tempDatabase(),
      git: join(repo, '.git'),
    })
    expect(handle.version).toEqual({ name: sha, source: 'git' })
    expect(recorded).toEqual({ version: sha, source: 'git' })
  })

  it('reads packed-refs', async () => {
    const repo = repository()
    git(repo, 'tag', '-a', 'v1', '-m', 'annotated tag: a peeled "^" line in packed-refs')
    const sha = git(repo, 'rev-parse', 'HEAD')
    git(repo, 'pack-refs', '--all')
    expect(existsSync(join(repo, '.git/refs/heads/main'))).toBe(false)
    expect(readFileSync(join(repo, '.git/packed-refs'), 'utf8')).toContain(`${sha} refs/heads/main`)
    const { recorded } = await recordedVersion({
      database: tempDatabase(),
      git: join(repo, '.git'),
    })
    expect(recorded).toEqual({ version: sha, source: 'git' })
  })

  it('reads a detached HEAD', async () => {
    const repo = repository()
    const first = git(repo, 'rev-parse', 'HEAD')
    commit(repo, 'second')
    git(repo, 'checkout', '-q', '--detach', first)
    expect(readFileSync(join(repo, '.git/HEAD'), 'utf8').trim()).toBe(first)
    const { recorded } = await recordedVersion({
      database: tempDatabase(),
      git: join(repo, '.git'),
    })
    expect(recorded).toEqual({ version: first, source: 'git' })
  })

  it("reads a worktree's .git file: its own HEAD, refs from the common directory", async () => {
    const repo = repository()
    const mainSha = git(repo, 'rev-parse', 'HEAD')
    const worktree = join(makeTempDir(), 'wt')
    git(repo, 'worktree', 'add', '-q', '-b', 'feature', worktree)
    const featureSha = commit(worktree, 'on feature')
    expect(featureSha).not.toBe(mainSha)
    expect(statSync(join(worktree, '.git')).isFile()).toBe(true)

    const { recorded } = await recordedVersion({
      database: tempDatabase(),
      git: join(worktree, '.git'),
    })
    expect(recorded).toEqual({ version: featureSha, source: 'git' })
    // The main checkout still reports its own commit.
    const main = await recordedVersion({ database: tempDatabase(), git: join(repo, '.git') })
    expect(main.recorded.version).toBe(mainSha)

    // With the worktree's branch packed, the ref is found in the common packed-refs.
    git(repo, 'pack-refs', '--all')
    const packed = await recordedVersion({ database: tempDatabase(), git: join(worktree, '.git') })
    expect(packed.recorded.version).toBe(featureSha)
  })

  it('reads .git folders and files written by hand (no git involved)', async () => {
    const sha = 'a'.repeat(40)
    const other = 'b'.repeat(40)
    const root = makeTempDir()
    const write = (path: string, text: string): void => {
      mkdirSync(dirname(join(root, path)), { recursive: true })
      writeFileSync(join(root, path), text)
    }
    // loose ref
    write('loose/.git/HEAD', 'ref: refs/heads/trunk\n')
    write('loose/.git/refs/heads/trunk', `${sha}\n`)
    // packed-refs with a comment and a peeled line
    write('packed/.git/HEAD', 'ref: refs/heads/release\n')
    write(
      'packed/.git/packed-refs',
      `# pack-refs with: peeled fully-peeled sorted \n${other} refs/heads/main\n${sha} refs/heads/release\n${other} refs/tags/v1\n^${sha}\n`,
    )
    // detached
    write('detached/.git/HEAD', `${sha}\n`)
    // worktree: .git file -> gitdir with its own HEAD and a commondir
    write('common/.git/refs/heads/topic', `${sha}\n`)
    write('common/.git/worktrees/wt/HEAD', 'ref: refs/heads/topic\n')
    write('common/.git/worktrees/wt/commondir', '../..\n')
    write('wt/.git', 'gitdir: ../common/.git/worktrees/wt\n')
    // SHA-256 repository
    write('sha256/.git/HEAD', `${'c'.repeat(64)}\n`)

    for (const folder of ['loose', 'packed', 'detached', 'wt']) {
      const { recorded } = await recordedVersion({
        database: tempDatabase(),
        git: join(root, folder, '.git'),
      })
      expect(recorded, folder).toEqual({ version: sha, source: 'git' })
    }
    const { recorded } = await recordedVersion({
      database: tempDatabase(),
      git: join(root, 'sha256/.git'),
    })
    expect(recorded.version).toBe('c'.repeat(64))
  })

  it('finds .git in a folder above the working directory', async () => {
    const repo = repository()
    const sha = git(repo, 'rev-parse', 'HEAD')
    const nested = join(repo, 'packages/api')
    mkdirSync(nested, { recursive: true })
    const { recorded } = await inDirectory(nested, () =>
      recordedVersion({ database: tempDatabase() }),
    )
    expect(recorded).toEqual({ version: sha, source: 'git' })
  })

  it('a restart on a new commit adds a second version row', async () => {
    const repo = repository()
    const database = tempDatabase()
    const first = git(repo, 'rev-parse', 'HEAD')
    const one = await recordedVersion({ database, git: join(repo, '.git') })
    one.handle.close()
    const second = commit(repo, 'second')
    await recordedVersion({ database, git: join(repo, '.git') })

    const versions = withDb(database, (db) =>
      db.prepare('SELECT name, source FROM version ORDER BY id').all(),
    )
    expect(versions).toEqual([
      { name: first, source: 'git' },
      { name: second, source: 'git' },
    ])
    expect(readRequests(database).map((r) => r.version)).toEqual([first, second])
    // A third start on the same commit adds no row.
    await recordedVersion({ database, git: join(repo, '.git') })
    expect(withDb(database, (db) => db.prepare('SELECT count(*) FROM version').pluck().get())).toBe(
      2,
    )
  })
})

describe('version without git', () => {
  it('the version option wins over git', async () => {
    const repo = repository()
    const { recorded } = await recordedVersion({
      database: tempDatabase(),
      git: join(repo, '.git'),
      version: 'release-7',
    })
    expect(recorded).toEqual({ version: 'release-7', source: 'option' })
  })

  it("falls back to the nearest package.json's version, then to unknown", async (context) => {
    const app = makeTempDir('routemeter-nogit-')
    // The fallback searches upward: make sure no .git or package.json lies above the temp folder.
    const above = dirname(app)
    for (let dir = above; ; dir = dirname(dir)) {
      if (existsSync(join(dir, '.git')) || existsSync(join(dir, 'package.json'))) {
        console.log(
          `skipped the fallback test: ${dir}, above the temp folder, has a .git or package.json`,
        )
        context.skip()
      }
      if (dirname(dir) === dir) break
    }
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'svc', version: '3.4.5' }))
    mkdirSync(join(app, 'src'))
    const fromPackage = await inDirectory(join(app, 'src'), () =>
      recordedVersion({ database: tempDatabase() }),
    )
    expect(fromPackage.recorded).toEqual({ version: '3.4.5', source: 'package' })

    // A .git that points nowhere (HEAD on an unborn branch) also falls back to package.json.
    mkdirSync(join(app, '.git'))
    writeFileSync(join(app, '.git/HEAD'), 'ref: refs/heads/unborn\n')
    const unborn = await inDirectory(app, () => recordedVersion({ database: tempDatabase() }))
    expect(unborn.recorded).toEqual({ version: '3.4.5', source: 'package' })

    rmSync(join(app, 'package.json'))
    rmSync(join(app, '.git'), { recursive: true })
    const unknown = await inDirectory(app, () => recordedVersion({ database: tempDatabase() }))
    expect(unknown.recorded).toEqual({ version: 'unknown', source: 'unknown' })
  })
})

describe('git tags (releases)', () => {
  it('finds the lightweight and annotated tags of the commit: loose, packed, their objects in a pack', () => {
    const repo = repository()
    const older = git(repo, 'rev-parse', 'HEAD')
    git(repo, 'tag', 'v0.9.0') // on the older commit: not this release
    const head = commit(repo, 'second')
    git(repo, 'tag', 'v1.0.0')
    git(repo, 'tag', '-a', 'release-2026-12', '-m', 'December release')
    git(repo, 'tag', 'releases/v1')
    // Tags of tags peel to the commit too.
    git(repo, 'tag', '-a', 'signed-off', '-m', 'on top', 'release-2026-12^{tag}')
    const gitDir = join(repo, '.git')
    const all = ['release-2026-12', 'releases/v1', 'signed-off', 'v1.0.0']
    expect(readGitTags(gitDir, head)).toEqual(all)
    expect(readGitTags(gitDir, older)).toEqual(['v0.9.0'])

    // Packed: refs into packed-refs (annotated with their ^peeled lines), objects into a pack.
    git(repo, 'gc', '-q', '--prune=now')
    expect(existsSync(join(gitDir, 'refs', 'tags', 'v1.0.0'))).toBe(false)
    expect(readFileSync(join(gitDir, 'packed-refs'), 'utf8')).toMatch(/\^[0-9a-f]{40}/)
    expect(readGitTags(gitDir, head)).toEqual(all)

    // A loose ref to an annotated tag whose object is in the pack (the ref rewritten by hand).
    const tagObject = git(repo, 'rev-parse', 'refs/tags/release-2026-12')
    expect(tagObject).not.toBe(head)
    mkdirSync(join(gitDir, 'refs', 'tags'), { recursive: true })
    writeFileSync(join(gitDir, 'refs', 'tags', 'hand-made'), `${tagObject}\n`)
    // packed-refs keeps the branch, loses the tags.
    const packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n')
    writeFileSync(
      join(gitDir, 'packed-refs'),
      packed.filter((line) => line.includes('refs/heads/')).join('\n') + '\n',
    )
    expect(readGitTags(gitDir, head)).toEqual(['hand-made'])
    // A tag object written after the pack: loose again.
    git(repo, 'tag', '-a', 'v1.0.1', '-m', 'patch')
    expect(readGitTags(gitDir, head)).toEqual(['hand-made', 'v1.0.1'])
  })

  it('are recorded with the version the collector writes; a version option has none', async () => {
    const repo = repository()
    git(repo, 'tag', '-a', 'v2.0.0', '-m', 'two')
    const database = tempDatabase()
    await inDirectory(repo, () => recordedVersion({ database }))
    expect(
      withDb(database, (db) => db.prepare('SELECT name, source, tags FROM version').all()),
    ).toEqual([{ name: git(repo, 'rev-parse', 'HEAD'), source: 'git', tags: '["v2.0.0"]' }])
    const named = tempDatabase()
    await inDirectory(repo, () => recordedVersion({ database: named, version: '2.0.0' }))
    expect(withDb(named, (db) => db.prepare('SELECT tags FROM version').pluck().all())).toEqual([
      null,
    ])
  })
})
