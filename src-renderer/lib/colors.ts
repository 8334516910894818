/**
 * One palette for the whole app: an endpoint keeps its colour in every view
 * because the colour comes from its id, not from its position in a chart.
 */
export const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#393b79',
  '#ad494a',
  '#637939',
  '#8c6d31',
  '#7b4173',
  '#3182bd',
  '#e6550d',
  '#31a354',
  '#756bb1',
  '#636363',
  '#9c9ede',
] as const

/** Colour of the series that sums up the endpoints not shown one by one. */
export const OTHERS_COLOR = '#b8bcc4'

export function endpointColor(endpointId: number): string {
  const index = (((endpointId - 1) % PALETTE.length) + PALETTE.length) % PALETTE.length
  return PALETTE[index] as string
}

/** WCAG's relative luminance of '#rrggbb'. */
function luminance(color: string): number {
  const hex = color.replace('#', '')
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }) as [number, number, number]
  return 0.2126 * r + 0.7152 * g + 0.0722 * b
}

/** WCAG's contrast ratio of two '#rrggbb' colours (1 to 21). */
export function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p) as [number, number]
  return (x + 0.05) / (y + 0.05)
}

const DARK_TEXT = '#000000'
const LIGHT_TEXT = '#ffffff'

/**
 * Black or white text, whichever contrasts more with `background`
 * ('#rrggbb'): never under 4.5:1 (the better of the two is at least 4.58).
 */
export function textOn(background: string): string {
  return contrast(background, DARK_TEXT) >= contrast(background, LIGHT_TEXT)
    ? DARK_TEXT
    : LIGHT_TEXT
}

/** The usual 4xx and 5xx, told apart within their family's hue. */
const CLIENT_ERRORS: Record<number, string> = {
  400: '#f59e0b',
  401: '#d97706',
  403: '#b45309',
  404: '#fcd34d',
  409: '#fb923c',
  422: '#ea580c',
  429: '#92400e',
}
const SERVER_ERRORS: Record<number, string> = {
  500: '#dc2626',
  502: '#f87171',
  503: '#991b1b',
  504: '#7f1d1d',
}

/** Status codes by class: success green, redirects blue, client errors amber, server errors red. */
export function statusColor(status: number): string {
  if (status === 0) return '#6b7280'
  if (status < 300) return status === 200 ? '#2e9e5b' : '#7cc49a'
  if (status < 400) return status === 304 ? '#5b8def' : '#9bb7f5'
  if (status < 500) return CLIENT_ERRORS[status] ?? '#e0a030'
  return SERVER_ERRORS[status] ?? '#c0262d'
}

export function statusLabel(status: number): string {
  return status === 0 ? 'aborted (no status)' : String(status)
}
