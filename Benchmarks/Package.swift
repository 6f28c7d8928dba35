// swift-tools-version:6.2
import PackageDescription

// The benchmark suite: every figure of DESIGN.md's "Figures to reach", measured by one command:
//   swift run -c release --package-path Benchmarks dlq-benchmarks [--only memory,sqlite,export,postgres] [--quick]
// A package of its own, so the main manifest stays light.
let package = Package(
    name: "dlq-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-dead-letters", path: "..")
    ],
    targets: [
        .target(name: "CMallocInfo"),
        .executableTarget(
            name: "dlq-benchmarks",
            dependencies: [
                "CMallocInfo",
                .product(name: "DeadLetters", package: "swift-dead-letters"),
                .product(name: "DeadLettersSQLite", package: "swift-dead-letters"),
                .product(name: "DeadLettersPostgres", package: "swift-dead-letters"),
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

for target in package.targets where target.type != .regular || target.name != "CMallocInfo" {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
