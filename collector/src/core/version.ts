import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import type { VersionSource } from '../schema/types.js'

export interface AppVersion {
  name: string
  source: VersionSource
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
  let gitDir = gitPath
  if (statSync(gitPath).isFile()) {
    const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(readText(gitPath) ?? '')
    if (!pointer) return undefined
    gitDir = isAbsolute(pointer[1]!) ? pointer[1]! : resolve(dirname(gitPath), pointer[1]!)
  }
  const commonPointer = readText(join(gitDir, 'commondir'))?.trim()
  const commonDir = commonPointer ? resolve(gitDir, commonPointer) : gitDir

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

function packedRef(commonDir: string, ref: string): string | undefined {
  const packed = readText(join(commonDir, 'packed-refs'))
  if (!packed) return undefined
  for (const line of packed.split('\n')) {
    if (line.startsWith('#') || line.startsWith('^')) continue
    const [sha, name] = line.trim().split(' ')
    if (name === ref && sha && SHA.test(sha)) return sha
  }
  return undefined
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
    if (commit) return { name: commit, source: 'git' }
  }
  const pkg = readPackageVersion(cwd)
  if (pkg) return { name: pkg, source: 'package' }
  return { name: 'unknown', source: 'unknown' }
}
