/** Saves text as a file through the browser's download (web mode and Electron alike). */
function download(fileName: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const link = document.createElement('a')
  link.href = url
  link.download = fileName
  link.click()
  URL.revokeObjectURL(url)
}

/** Saves a value as a JSON file. */
export function downloadJson(fileName: string, value: unknown): void {
  download(fileName, JSON.stringify(value), 'application/json')
}

/** A file name for an endpoint's export: method and route, with what a file name cannot hold replaced. */
export function endpointFileName(method: string, route: string, extension: string): string {
  return `${method}${route.replace(/[^A-Za-z0-9]+/g, '_')}.${extension}`
}

/** A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
function csvField(value: string | number | null | undefined): string {
  const text = value === null || value === undefined ? '' : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** Saves rows as a CSV file (a header line, then the rows) through the browser's download. */
export function downloadCsv(
  fileName: string,
  header: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>,
): void {
  const text = [header, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n')
  download(fileName, `${text}\r\n`, 'text/csv')
}
