// swift-tools-version:6.2
import PackageDescription

// The benchmark suite: every figure of DESIGN.md's "Figures to reach", measured by one command:
//   swift run -c release --package-path Benchmarks dlq-benchmarks [--only memory,sqlite,export,postgres] [--quick]
// A package of its own, so the main manifest stays light.
let package = Package(
    name: "dlq-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-dead-letters", path: ".."),
        // SQLite's C API for the raw baselines (the version the stores use).
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // postgres-nio for the raw PostgreSQL baseline (the version the store uses).
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CMallocInfo"),
        // Counts allocations by defining malloc and its relatives: linked into dlq-alloc-check only.
        .target(name: "CMallocCount"),
        // The Python seed's workload, shared by both executables.
        .target(
            name: "SeedWorkload",
            dependencies: [.product(name: "DeadLetters", package: "swift-dead-letters")]
        ),
        .executableTarget(
            name: "dlq-benchmarks",
            dependencies: [
                "CMallocInfo",
                "SeedWorkload",
                .product(name: "DeadLetters", package: "swift-dead-letters"),
                .product(name: "DeadLettersSQLite", package: "swift-dead-letters"),
                .product(name: "DeadLettersPostgres", package: "swift-dead-letters"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The allocation check that scripts/test runs (scripts/alloc-check, thresholds in allocations.txt).
        .executableTarget(
            name: "dlq-alloc-check",
            dependencies: [
                "CMallocCount",
                "SeedWorkload",
                .product(name: "DeadLetters", package: "swift-dead-letters"),
                .product(name: "DeadLettersSQLite", package: "swift-dead-letters"),
            ]
        ),
    ]
)

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

for target in package.targets where !["CMallocInfo", "CMallocCount"].contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
