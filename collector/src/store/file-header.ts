/*
 * A metrics file's identity as the disk holds it, read without SQLite: a
 * connection in WAL mode reads page 1 from its cache and the -wal, so it
 * never sees a file copied over the one it has open (`cp other.db
 * metrics.db` keeps the inode). Runs where the writer runs, once a flush.
 */
import { fstatSync, openSync, readSync, statSync } from 'node:fs'
import { APPLICATION_ID } from '../schema/types.js'

const HEADER_BYTES = 100
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1')

/** What the first 100 bytes of a file say. */
export interface DiskHeader {
  /** a device and inode: another file at the same path has another */
  file: string
  /** whether the file starts as an SQLite database does */
  sqlite: boolean
  applicationId: number
  /** pages the file holds as of its last checkpoint */
  pageCount: number
}

/**
 * Open descriptors by device and inode, never closed: closing any descriptor
 * of a file drops every POSIX lock this process holds on it, SQLite's own
 * included. One per file the process has written, so few.
 */
const descriptors = new Map<string, number>()

/** The header of the file at `path` as on disk; undefined when no file is there. */
export function readDiskHeader(path: string): DiskHeader | undefined {
  const stats = statSync(path, { throwIfNoEntry: false })
  if (stats === undefined) return undefined
  let file = `${stats.dev}:${stats.ino}`
  let fd = descriptors.get(file)
  if (fd === undefined) {
    fd = openSync(path, 'r')
    // The path may name another file by now: key the descriptor by what it opened.
    const opened = fstatSync(fd)
    file = `${opened.dev}:${opened.ino}`
    const known = descriptors.get(file)
    if (known === undefined) descriptors.set(file, fd)
    else fd = known // the new descriptor stays open: see `descriptors`
  }
  const bytes = Buffer.alloc(HEADER_BYTES)
  const read = readSync(fd, bytes, 0, HEADER_BYTES, 0)
  const sqlite = read === HEADER_BYTES && bytes.subarray(0, MAGIC.length).equals(MAGIC)
  return {
    file,
    sqlite,
    applicationId: sqlite ? bytes.readInt32BE(68) : 0,
    pageCount: sqlite ? bytes.readUInt32BE(28) : 0,
  }
}

/** How a file at a path compares with the one a writer opened. */
export type FileState = 'same' | 'gone' | 'moved' | 'overwritten'

/**
 * What a writer knows of the file it opened, to notice it being deleted,
 * replaced by another file (a new inode), or overwritten in place.
 */
export class FileIdentity {
  private pageCount: number
  /** the file's count of incremental vacuums (meta `vacuums`) when pageCount was last lowered */
  private vacuums = 0

  private constructor(
    readonly path: string,
    private readonly header: DiskHeader,
  ) {
    this.pageCount = header.pageCount
  }

  /**
   * The identity of the file at `path` now; undefined when it cannot be read.
   * `vacuums`: the file's count of vacuums as of now (a later one explains a shrink).
   */
  static of(path: string, vacuums = 0): FileIdentity | undefined {
    const header = readDiskHeader(path)
    if (header === undefined) return undefined
    const identity = new FileIdentity(path, header)
    identity.vacuums = vacuums
    return identity
  }

  /**
   * Compares the file at the path with the one opened. Overwritten in place:
   * not an SQLite file any more, another application's id, or fewer pages
   * than a checkpoint has already written (an older copy) unless a writer
   * vacuumed the file since (retention frees pages: `vacuums` reads the
   * file's count of vacuums, which such a writer raised).
   */
  check(vacuums: () => number = () => 0): FileState {
    let now: DiskHeader | undefined
    try {
      now = readDiskHeader(this.path)
    } catch {
      return 'gone'
    }
    if (now === undefined) return 'gone'
    if (now.file !== this.header.file) return 'moved'
    // A new file's id reaches the disk with its first checkpoint: until then the header says 0.
    const ours =
      now.applicationId === APPLICATION_ID || now.applicationId === this.header.applicationId
    if (!now.sqlite || !ours) return 'overwritten'
    if (now.pageCount < this.pageCount) {
      let count: number
      try {
        count = vacuums()
      } catch {
        return 'overwritten'
      }
      if (count <= this.vacuums) return 'overwritten'
      this.vacuums = count
    }
    this.pageCount = now.pageCount
    return 'same'
  }
}
