export declare function buildPackages(names: string[]): void
