/**
 * The views' queries on one open metrics file: the family modules of
 * services/views/ over the store's reader (views/reader.ts, the seam a
 * second storage engine implements). Arguments arrive validated.
 */
import type {
  AboutFile,
  ClientArgs,
  CompareArgs,
  CpuProfile,
  EndpointProfile,
  ProfileArgs,
  ReleaseComparison,
  ClientBreakdown,
  EndpointArgs,
  EndpointBox,
  ErrorRequest,
  FileInfo,
  HeatmapArgs,
  HourHeatmap,
  NodeArgs,
  NodeShare,
  OutlierArgs,
  OutlierDetail,
  OutlierPage,
  OutlierTimeline,
  OverviewRow,
  RangeArgs,
  StatusArgs,
  StatusCodes,
  Utilization,
  VersionEvolution,
  VersionEvolutionArgs,
  VersionUtilization,
} from '../api/contract.js'
import type { MetricsConnection } from './database.js'
import { clients } from './views/clients.js'
import { ViewContext } from './views/context.js'
import { hourHeatmap, latestErrors, statusCodes, utilization } from './views/over-time.js'
import { endpoints, info, nodeBreakdown, performance } from './views/overview.js'
import type { MetricsReader } from './views/reader.js'
import { SqliteReader } from './views/sqlite-reader.js'
import { versionEvolution, versionUtilization } from './views/versions.js'
import { outlier, outlierCpuProfile, outliers, outlierTimeline } from './views/outliers.js'
import { cpuProfile, profile } from './views/profiles.js'
import { aboutFile } from './views/about.js'
import { compare } from './views/compare.js'

export class MetricsQueries {
  private readonly ctx: ViewContext

  /** A metrics file's connection, or any store's reader. */
  constructor(store: MetricsConnection | MetricsReader, now: () => number) {
    const reader = 'db' in store ? new SqliteReader(store) : store
    this.ctx = new ViewContext(reader, now)
  }

  info(): FileInfo {
    return info(this.ctx)
  }
  endpoints(args: RangeArgs): OverviewRow[] {
    return endpoints(this.ctx, args)
  }
  utilization(args: RangeArgs): Utilization {
    return utilization(this.ctx, args)
  }
  hourHeatmap(args: HeatmapArgs): HourHeatmap {
    return hourHeatmap(this.ctx, args)
  }
  performance(args: RangeArgs): EndpointBox[] {
    return performance(this.ctx, args)
  }
  versionEvolution(args: VersionEvolutionArgs): VersionEvolution {
    return versionEvolution(this.ctx, args)
  }
  versionUtilization(args: RangeArgs): VersionUtilization {
    return versionUtilization(this.ctx, args)
  }
  clients(args: ClientArgs): ClientBreakdown {
    return clients(this.ctx, args)
  }
  statusCodes(args: StatusArgs): StatusCodes {
    return statusCodes(this.ctx, args)
  }
  latestErrors(args: StatusArgs & { limit?: number }): ErrorRequest[] {
    return latestErrors(this.ctx, args)
  }
  nodeBreakdown(args: NodeArgs): NodeShare[] {
    return nodeBreakdown(this.ctx, args)
  }
  outliers(args: OutlierArgs): OutlierPage {
    return outliers(this.ctx, args)
  }
  outlier(args: { id: number }): OutlierDetail {
    return outlier(this.ctx, args)
  }
  outlierTimeline(args: EndpointArgs): OutlierTimeline {
    return outlierTimeline(this.ctx, args)
  }
  aboutFile(): AboutFile {
    return aboutFile(this.ctx)
  }
  compare(args: CompareArgs): ReleaseComparison {
    return compare(this.ctx, args)
  }
  profile(args: ProfileArgs): EndpointProfile {
    return profile(this.ctx, args)
  }
  cpuProfile(args: ProfileArgs): CpuProfile | null {
    return cpuProfile(this.ctx, args)
  }
  outlierCpuProfile(args: { id: number }): CpuProfile | null {
    return outlierCpuProfile(this.ctx, args)
  }
}
