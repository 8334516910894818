export declare const CONFIGS: Record<string, readonly string[]>
export declare const LEVEL2_CONFIGS: readonly string[]
export declare const AWAITS: number
export declare const RETENTION_CONFIGS: readonly string[]
