/** Saves a value as a JSON file through the browser's download (web mode and Electron alike). */
export function downloadJson(fileName: string, value: unknown): void {
  const url = URL.createObjectURL(new Blob([JSON.stringify(value)], { type: 'application/json' }))
  const link = document.createElement('a')
  link.href = url
  link.download = fileName
  link.click()
  URL.revokeObjectURL(url)
}

/** A file name for an endpoint's export: method and route, with what a file name cannot hold replaced. */
export function endpointFileName(method: string, route: string, extension: string): string {
  return `${method}${route.replace(/[^A-Za-z0-9]+/g, '_')}.${extension}`
}
