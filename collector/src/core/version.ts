import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { constants, inflateSync } from 'node:zlib'
import type { VersionSource } from '../schema/types.js'

export interface AppVersion {
  name: string
  source: VersionSource
  /** the git tags that point at the commit (releases), when the version is a commit */
  tags?: string[]
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/

/** Finds `.git` (a folder, or a worktree's file) in `from` or a folder above it. */
export function findGit(from: string): string | undefined {
  let dir = resolve(from)
  for (;;) {
    const candidate = join(dir, '.git')
    if (existsSync(candidate)) return candidate
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/**
 * The commit that HEAD points to, read from git's files without running git:
 * a detached HEAD, a loose ref, packed-refs, and a worktree's `.git` file
 * (whose HEAD is its own while refs live in the common directory).
 */
export function readGitCommit(gitPath: string): string | undefined {
  const dirs = gitDirs(gitPath)
  if (dirs === undefined) return undefined
  const { gitDir, commonDir } = dirs

  let head = readText(join(gitDir, 'HEAD'))?.trim()
  // Follow symbolic refs (HEAD -> refs/heads/main), a few levels at most.
  for (let depth = 0; head !== undefined && depth < 5; depth++) {
    if (SHA.test(head)) return head
    const ref = /^ref:\s*(\S+)$/.exec(head)?.[1]
    if (!ref) return undefined
    head = readText(join(gitDir, ref))?.trim() ?? readText(join(commonDir, ref))?.trim()
    if (head === undefined) head = packedRef(commonDir, ref)
  }
  return undefined
}

/** A repository's own folder and the common one (a worktree's refs live in the latter). */
function gitDirs(gitPath: string): { gitDir: string; commonDir: string } | undefined {
  let gitDir = gitPath
  if (statSync(gitPath).isFile()) {
    const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(readText(gitPath) ?? '')
    if (!pointer) return undefined
    gitDir = isAbsolute(pointer[1]!) ? pointer[1]! : resolve(dirname(gitPath), pointer[1]!)
  }
  const commonPointer = readText(join(gitDir, 'commondir'))?.trim()
  return { gitDir, commonDir: commonPointer ? resolve(gitDir, commonPointer) : gitDir }
}

/**
 * The tags that point at `commit`, read from git's files without running git:
 * lightweight tags (the ref holds the commit) and annotated ones (the ref
 * holds a tag object naming the commit), loose under refs/tags or in
 * packed-refs (whose `^` lines give an annotated tag's commit), their tag
 * objects loose or in a pack. Sorted by name.
 */
export function readGitTags(gitPath: string, commit: string): string[] {
  const dirs = gitDirs(gitPath)
  if (dirs === undefined) return []
  const { commonDir } = dirs
  const found = new Set<string>()
  const objects = new GitObjects(join(commonDir, 'objects'))
  // packed-refs first: a loose ref of the same name is newer and wins below.
  const refs = new Map<string, PackedRef>()
  for (const [name, ref] of packedRefs(commonDir)) {
    if (name.startsWith('refs/tags/')) refs.set(name.slice('refs/tags/'.length), ref)
  }
  const walk = (dir: string, prefix: string, depth: number): void => {
    if (depth > 8) return
    let entries: import('node:fs').Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const name = prefix + entry.name
      if (entry.isDirectory()) walk(join(dir, entry.name), `${name}/`, depth + 1)
      else {
        const sha = readText(join(dir, entry.name))?.trim()
        if (sha !== undefined && SHA.test(sha)) refs.set(name, { sha })
      }
    }
  }
  walk(join(commonDir, 'refs', 'tags'), '', 0)
  for (const [name, ref] of refs) {
    if (ref.sha === commit || ref.peeled === commit || objects.peel(ref.sha) === commit) {
      found.add(name)
    }
  }
  objects.close()
  return [...found].sort()
}

/**
 * Reads git objects by id, loose (zlib) or whole in a pack (a version 2
 * index), enough to peel annotated tags: a deltified object is not followed.
 */
class GitObjects {
  private packs: Array<{ index: Buffer; pack: string; fd?: number }> | undefined

  constructor(private readonly dir: string) {}

  /** The commit an annotated tag points at (through tags of tags); undefined if not a tag. */
  peel(sha: string): string | undefined {
    let id = sha
    for (let depth = 0; depth < 5; depth++) {
      const object = this.read(id)
      if (object === undefined || object.type !== 'tag') return depth === 0 ? undefined : id
      const target = /^object ([0-9a-f]{40,64})$/m.exec(object.body.toString('latin1'))?.[1]
      if (target === undefined) return undefined
      id = target
    }
    return undefined
  }

  private read(sha: string): { type: string; body: Buffer } | undefined {
    try {
      const raw = inflateSync(readFileSync(join(this.dir, sha.slice(0, 2), sha.slice(2))))
      const space = raw.indexOf(0x20)
      const nul = raw.indexOf(0)
      return { type: raw.subarray(0, space).toString('latin1'), body: raw.subarray(nul + 1) }
    } catch {
      return this.readPacked(sha)
    }
  }

  private readPacked(sha: string): { type: string; body: Buffer } | undefined {
    this.packs ??= this.loadIndexes()
    const wanted = Buffer.from(sha, 'hex')
    if (wanted.length !== 20) return undefined
    for (const pack of this.packs) {
      const offset = indexOffset(pack.index, wanted)
      if (offset === undefined) continue
      pack.fd ??= openSync(pack.pack, 'r')
      const head = Buffer.alloc(32)
      readSync(pack.fd, head, 0, head.length, offset)
      // Type in bits 4-6 of the first byte; the size's varint follows.
      const type = (head[0]! >> 4) & 7
      let at = 1
      while (head[at - 1]! & 0x80) at++
      // 1 commit, 2 tree, 3 blob, 4 tag; 6 and 7 are deltas, not followed.
      const names = ['', 'commit', 'tree', 'blob', 'tag']
      if (type < 1 || type > 4) return undefined
      const chunk = Buffer.alloc(64 * 1024)
      const read = readSync(pack.fd, chunk, 0, chunk.length, offset + at)
      try {
        return {
          type: names[type]!,
          // The chunk runs on into the next objects: inflate what the stream holds, no more.
          body: inflateSync(chunk.subarray(0, read), { finishFlush: constants.Z_SYNC_FLUSH }),
        }
      } catch {
        return undefined
      }
    }
    return undefined
  }

  private loadIndexes(): Array<{ index: Buffer; pack: string }> {
    const packDir = join(this.dir, 'pack')
    let names: string[]
    try {
      names = readdirSync(packDir)
    } catch {
      return []
    }
    return names
      .filter((name) => name.endsWith('.idx'))
      .map((name) => ({
        index: readFileSync(join(packDir, name)),
        pack: join(packDir, name.replace(/\.idx$/, '.pack')),
      }))
  }

  close(): void {
    for (const pack of this.packs ?? []) if (pack.fd !== undefined) closeSync(pack.fd)
  }
}

/** The offset of an object in its pack from a version 2 index, or undefined. */
function indexOffset(index: Buffer, sha: Buffer): number | undefined {
  if (index.readUInt32BE(0) !== 0xff744f63 || index.readUInt32BE(4) !== 2) return undefined
  const fanout = 8
  const count = index.readUInt32BE(fanout + 255 * 4)
  const first = sha[0]!
  let low = first === 0 ? 0 : index.readUInt32BE(fanout + (first - 1) * 4)
  let high = index.readUInt32BE(fanout + first * 4)
  const names = fanout + 256 * 4
  while (low < high) {
    const mid = (low + high) >> 1
    const order = index.compare(sha, 0, 20, names + mid * 20, names + mid * 20 + 20)
    if (order === 0) {
      const offsets = names + count * 20 + count * 4
      const small = index.readUInt32BE(offsets + mid * 4)
      if ((small & 0x80000000) === 0) return small
      const large = offsets + count * 4 + (small & 0x7fffffff) * 8
      return Number(index.readBigUInt64BE(large))
    }
    if (order > 0) high = mid
    else low = mid + 1
  }
  return undefined
}

/** A ref in packed-refs: its object, and for an annotated tag the commit it peels to (a `^` line). */
interface PackedRef {
  sha: string
  peeled?: string
}

/** Every ref of packed-refs, by full name (refs/heads/main, refs/tags/v1). */
function packedRefs(commonDir: string): Map<string, PackedRef> {
  const refs = new Map<string, PackedRef>()
  let last: PackedRef | undefined
  for (const line of readText(join(commonDir, 'packed-refs'))?.split('\n') ?? []) {
    if (line.startsWith('^')) {
      if (last !== undefined) last.peeled = line.slice(1).trim()
      continue
    }
    const [sha, name] = line.trim().split(' ')
    last = undefined
    if (line.startsWith('#') || sha === undefined || name === undefined || !SHA.test(sha)) continue
    last = { sha }
    refs.set(name, last)
  }
  return refs
}

function packedRef(commonDir: string, ref: string): string | undefined {
  return packedRefs(commonDir).get(ref)?.sha
}

/** The nearest package.json's version, searching upward from `from`. */
export function readPackageVersion(from: string): string | undefined {
  let dir = resolve(from)
  for (;;) {
    const text = readText(join(dir, 'package.json'))
    if (text !== undefined) {
      try {
        const version = (JSON.parse(text) as { version?: unknown }).version
        return typeof version === 'string' && version ? version : undefined
      } catch {
        return undefined
      }
    }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

/** The version option, else git's HEAD commit, else package.json's version. */
export function detectVersion(
  options: { version?: string | undefined; git?: string | undefined },
  cwd: string = process.cwd(),
): AppVersion {
  if (options.version) return { name: options.version, source: 'option' }
  const git = options.git ?? findGit(cwd)
  if (git) {
    let commit: string | undefined
    try {
      commit = readGitCommit(git)
    } catch {
      commit = undefined
    }
    if (commit) {
      let tags: string[] = []
      try {
        tags = readGitTags(git, commit)
      } catch {
        // tags are a nicety: an unreadable one leaves the commit unnamed
      }
      return tags.length > 0
        ? { name: commit, source: 'git', tags }
        : { name: commit, source: 'git' }
    }
  }
  const pkg = readPackageVersion(cwd)
  if (pkg) return { name: pkg, source: 'package' }
  return { name: 'unknown', source: 'unknown' }
}
