/** The traffic generator: realistic metrics files written through the collector's writer. */
export { generateMetricsFile, GENERATOR_VERSION } from './generate.js'
export type { GenerateOptions, GenerateSummary } from './generate.js'
export { buildModel, MAX_ENDPOINTS } from './model.js'
export type {
  EndpointModel,
  GeneratorOptions,
  ReleaseEffect,
  TrafficModel,
  UserModel,
  VersionModel,
} from './model.js'
export { createProgress } from './progress.js'
export type { Progress } from './progress.js'
