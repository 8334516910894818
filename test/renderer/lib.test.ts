/** The renderer's formatting and URL helpers: pure functions. */
import { describe, expect, test } from 'vitest'
import { toQuery } from '../../src-renderer/api/http'
import {
  contrast,
  endpointColor,
  PALETTE,
  statusColor,
  textOn,
} from '../../src-renderer/lib/colors'
import {
  formatDayColumns,
  formatMs,
  formatRelative,
  shortVersion,
} from '../../src-renderer/lib/format'
import { dayKey, parseDayKey, startOfDay } from '../../src-renderer/lib/time'
import { parseHash, toHash } from '../../src-renderer/stores/nav'

describe('format', () => {
  test('durations arrive in µs and read as ms with about three digits', () => {
    expect(formatMs(42)).toBe('0.042')
    expect(formatMs(4_200)).toBe('4.20')
    expect(formatMs(42_000)).toBe('42.0')
    expect(formatMs(420_400)).toBe('420')
    expect(formatMs(2_500_000)).toBe('2,500')
    expect(formatMs(0)).toBe('0')
    expect(formatMs(null)).toBe('–')
  })

  test('a 40-character git commit shortens to 7; other versions stay', () => {
    expect(shortVersion('9fceb02d0ae598e95dc970b74767f19372d61af8')).toBe('9fceb02')
    expect(shortVersion('1.5.0')).toBe('1.5.0')
    expect(shortVersion('9fceb02')).toBe('9fceb02')
  })

  test('relative times', () => {
    const now = 1_000_000_000
    expect(formatRelative(null, now)).toBe('never')
    expect(formatRelative(now - 5_000, now)).toBe('5 s ago')
    expect(formatRelative(now - 3 * 60_000, now)).toBe('3 min ago')
    expect(formatRelative(now - 86_400_000, now)).toBe('1 day ago')
  })

  test('day columns name the month where it changes', () => {
    expect(formatDayColumns(['2026-10-31', '2026-11-01', '2026-11-02'])).toEqual([
      'Sat 31 Oct',
      'Sun 1 Nov',
      'Mon 2',
    ])
  })
})

describe('time', () => {
  test('days start at midnight in the offset', () => {
    const t = Date.UTC(2026, 10, 20, 23, 30)
    expect(startOfDay(t, 0)).toBe(Date.UTC(2026, 10, 20))
    expect(startOfDay(t, 60)).toBe(Date.UTC(2026, 10, 20, 23))
    expect(dayKey(t, 60)).toBe('2026-11-21')
    expect(parseDayKey('2026-11-21', 60)).toBe(Date.UTC(2026, 10, 20, 23))
    expect(parseDayKey('21/11/2026', 0)).toBeNaN()
  })
})

describe('colours', () => {
  test('an endpoint keeps its colour, from one palette', () => {
    expect(endpointColor(1)).toBe(PALETTE[0])
    expect(endpointColor(1 + PALETTE.length)).toBe(PALETTE[0])
    expect(endpointColor(7)).toBe(endpointColor(7))
    expect(textOn('#ffffff')).toBe('#000000')
    expect(textOn('#0b3a6f')).toBe('#ffffff')
    // Every status colour gets text of at least 4.5:1 (WCAG AA), amber and green included.
    for (const status of [
      0, 200, 201, 304, 302, 400, 401, 403, 404, 409, 422, 429, 418, 500, 502, 503, 504, 599,
    ]) {
      const background = statusColor(status)
      expect(contrast(background, textOn(background)), `${status}`).toBeGreaterThanOrEqual(4.5)
    }
  })
})

describe('web transport and routes', () => {
  test('query strings: numbers, comma-separated number arrays, repeated strings', () => {
    expect(
      toQuery({
        from: 1,
        to: 2,
        endpointIds: [3, 4],
        names: ['a,b', 'c'],
        kind: 'user',
      }).toString(),
    ).toBe('from=1&to=2&endpointIds=3%2C4&names=a%2Cb&names=c&kind=user')
    expect(toQuery({ from: 1, endpointIds: [], limit: undefined }).toString()).toBe('from=1')
  })

  test('hash routes', () => {
    expect(parseHash('#/endpoint/12')).toEqual({ view: 'endpoint', endpointId: 12 })
    expect(parseHash('#/status')).toEqual({ view: 'status', endpointId: null })
    expect(parseHash('#/nonsense')).toEqual({ view: 'overview', endpointId: null })
    expect(toHash({ view: 'endpoint', endpointId: 3 })).toBe('#/endpoint/3')
  })
})
