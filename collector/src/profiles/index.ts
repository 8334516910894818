export {
  decodeProfile,
  encodeProfile,
  FoldedBuilder,
  mergeProfiles,
  sampleCount,
  toCpuProfile,
} from './folded.js'
export type * from './types.js'
