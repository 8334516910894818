import type { ApexOptions } from 'apexcharts'

/**
 * The toolbar's tools: ApexCharts' own download menu (SVG, PNG, and the
 * chart's data as CSV) on every chart; zooming only where `zoom` is set.
 */
export function chartTools(
  zoom = false,
): NonNullable<NonNullable<ApexOptions['chart']>['toolbar']> {
  return {
    show: true,
    tools: {
      download: true,
      selection: false,
      zoom,
      zoomin: zoom,
      zoomout: zoom,
      pan: false,
      reset: zoom,
    },
  }
}

/** What every chart shares: no animations (live data), the app's font, its download menu. */
export function baseChart(
  type: NonNullable<ApexOptions['chart']>['type'],
  height: number,
  extra: ApexOptions['chart'] = {},
): NonNullable<ApexOptions['chart']> {
  return {
    type,
    height,
    fontFamily: 'inherit',
    foreColor: '#4b5563',
    animations: { enabled: false, dynamicAnimation: { enabled: false } },
    toolbar: chartTools(),
    zoom: { enabled: false },
    selection: { enabled: false },
    redrawOnParentResize: true,
    ...extra,
  }
}

/** 'YYYY-MM-DD' as the timestamp ApexCharts puts on a datetime axis (labels in UTC). */
export function dayToX(day: string): number {
  return Date.parse(`${day}T00:00:00Z`)
}

export const AXIS_TITLE_STYLE = { fontSize: '12px', fontWeight: 500, color: '#6b7280' }
