export const ROOT: string
export function electronVersion(): string
export function electronAbi(): string | undefined
export function nativeBindingPath(version?: string): string
export function findElectronBinary(options?: {
  downloadTimeoutMs?: number
  runTimeoutMs?: number
}): { path: string; reason?: undefined } | { path?: undefined; reason: string }
export function displayProblem(
  env?: Record<string, string | undefined>,
  platform?: string,
): string | undefined
export function nativeModuleAbi(file: string): string | undefined
