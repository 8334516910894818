/**
 * The files opened lately, newest first, kept in a small JSON file in the
 * app's user data folder. The first one is what opens when no file is given.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

export const MAX_RECENT = 10

export class RecentFiles {
  private files: string[]

  constructor(private readonly storePath: string) {
    this.files = RecentFiles.read(storePath)
  }

  private static read(storePath: string): string[] {
    try {
      const parsed = JSON.parse(readFileSync(storePath, 'utf8')) as { recent?: unknown }
      return Array.isArray(parsed.recent)
        ? parsed.recent
            .filter((item): item is string => typeof item === 'string')
            .slice(0, MAX_RECENT)
        : []
    } catch {
      return []
    }
  }

  list(): readonly string[] {
    return this.files
  }

  last(): string | undefined {
    return this.files[0]
  }

  add(path: string): void {
    const absolute = resolve(path)
    this.files = [absolute, ...this.files.filter((p) => p !== absolute)].slice(0, MAX_RECENT)
    this.save()
  }

  clear(): void {
    this.files = []
    this.save()
  }

  private save(): void {
    try {
      mkdirSync(dirname(this.storePath), { recursive: true })
      const temporary = `${this.storePath}.tmp`
      writeFileSync(temporary, JSON.stringify({ recent: this.files }, null, 2))
      renameSync(temporary, this.storePath)
    } catch {
      // Recent files are a convenience: a read-only profile must not stop the app.
    }
  }
}
