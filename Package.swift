// swift-tools-version:6.2
import Foundation
import PackageDescription

let package = Package(
    name: "swift-dead-letters",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DeadLetters", targets: ["DeadLetters"]),
        .library(name: "DeadLettersSQLite", targets: ["DeadLettersSQLite"]),
        .library(name: "DeadLettersPostgres", targets: ["DeadLettersPostgres"]),
        .library(name: "DeadLettersAdmin", targets: ["DeadLettersAdmin"]),
        .library(name: "DeadLettersTesting", targets: ["DeadLettersTesting"]),
        .executable(name: "dlq", targets: ["dlq"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "DeadLetters",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "DeadLettersSQLite",
            dependencies: [
                "DeadLetters",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The SQLite C API, for binding rows on GRDB's statement handles (SQLiteInsertStatement.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "DeadLettersPostgres",
            dependencies: [
                "DeadLetters",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // ConnectionPoolError: the pool's circuit breaker, told apart from other failures.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "DeadLettersAdmin",
            dependencies: [
                "DeadLetters",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // SocketAddress, for the remote address of AdminRequestContext.
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("Templates")]
        ),
        .target(
            name: "DeadLettersTesting",
            dependencies: [
                "DeadLetters",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "dlq",
            dependencies: [
                "DeadLetters",
                "DeadLettersSQLite",
                "DeadLettersPostgres",
                "DeadLettersAdmin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "QuickStart",
            dependencies: ["DeadLetters", "DeadLettersSQLite"],
            path: "Examples/QuickStart"
        ),
        .testTarget(
            name: "DeadLettersTests",
            dependencies: ["DeadLetters", "DeadLettersTesting"]
        ),
        .testTarget(
            name: "DeadLettersSQLiteTests",
            dependencies: ["DeadLettersSQLite", "DeadLettersTesting"]
        ),
        .testTarget(
            name: "DeadLettersPostgresTests",
            dependencies: ["DeadLettersPostgres", "DeadLettersTesting"]
        ),
        .testTarget(
            name: "DeadLettersAdminTests",
            dependencies: [
                "DeadLettersAdmin", "DeadLettersSQLite", "DeadLettersTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "DLQTests",
            dependencies: ["DeadLetters", "DeadLettersSQLite", "DeadLettersTesting"],
            // Stores and exports made by the previous release, read by path (Fixtures/README.md).
            exclude: ["Fixtures"]
        ),
    ]
)

// Fuzzing only (scripts/fuzz): `DLQ_FUZZ=1 swift build --product FuzzDecoder -Xswiftc -sanitize=fuzzer,address
// --scratch-path .build-fuzz`. libFuzzer targets, each its own product, declared only then: no other build
// links libFuzzer's `main`. Their checks live in DeadLettersTesting (FuzzChecks), whose regression tests run
// the kept inputs (Fuzz/corpus, Fuzz/regressions) in every `swift test`.
if ProcessInfo.processInfo.environment["DLQ_FUZZ"] == "1" {
    package.targets.append(.target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"))
    for name in ["FuzzDecoder", "FuzzParsers"] {
        package.targets.append(
            .executableTarget(
                name: name,
                dependencies: ["CLibFuzzer", "DeadLetters", "DeadLettersTesting"],
                path: "Fuzz/\(name)"
            )
        )
        package.products.append(.executable(name: name, targets: [name]))
    }
}

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

for target in package.targets {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}

// For faster local iteration only: `DLQ_DEV_TARGETS=DeadLettersTests,DeadLettersSQLiteTests swift test` keeps
// just those targets and what they depend on. CI and `scripts/test` never set it.
if let only = ProcessInfo.processInfo.environment["DLQ_DEV_TARGETS"], !only.isEmpty {
    var keep = Set(only.split(separator: ",").map(String.init))
    var changed = true
    while changed {
        changed = false
        for target in package.targets where keep.contains(target.name) {
            for dependency in target.dependencies {
                if case .targetItem(let name, _) = dependency, keep.insert(name).inserted { changed = true }
                if case .byNameItem(let name, _) = dependency, keep.insert(name).inserted { changed = true }
            }
        }
    }
    package.targets.removeAll { !keep.contains($0.name) }
    package.products.removeAll { product in
        let targets = (product as? Product.Library)?.targets ?? (product as? Product.Executable)?.targets ?? []
        return !targets.allSatisfy(keep.contains)
    }
}
