/**
 * Loads can overlap (a file change while the range changes): each load takes
 * a ticket, and only the latest ticket may write its result.
 */
export function latestOnly(): { take(): number; isLatest(ticket: number): boolean } {
  let current = 0
  return {
    take: () => ++current,
    isLatest: (ticket) => ticket === current,
  }
}
