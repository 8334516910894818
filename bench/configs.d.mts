export declare const CONFIGS: Record<string, readonly string[]>
