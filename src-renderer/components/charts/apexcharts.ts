/** ApexCharts with only what the views draw: smaller than the full build. */
import ApexCharts from 'apexcharts/core'
import 'apexcharts/bar'
import 'apexcharts/boxPlot'
import 'apexcharts/heatmap'
import 'apexcharts/line'
import 'apexcharts/scatter'
import 'apexcharts/features/legend'
import 'apexcharts/features/toolbar'

export default ApexCharts
export type { ApexOptions } from 'apexcharts'
