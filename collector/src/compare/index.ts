export {
  compareReleases,
  parseTags,
  readVersions,
  releases,
  type ReleaseVersion,
} from './releases.js'
export type * from './types.js'
export {
  benjaminiHochberg,
  holm,
  mannWhitneyGrouped,
  mannWhitneyU,
  medianTableTest,
  moodMedianTest,
} from './statistics.js'
