public import CoreMetrics
public import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension DeadLetterQueue {
    /// How a queue behaves. Every field has a default; ``validate()`` checks the whole.
    public struct Configuration: Sendable {
        /// How failures are retried: immediate attempts in `process`, then delayed attempts from the store.
        /// Default ``RetryPolicy/default``.
        public var retryPolicy: RetryPolicy
        /// How long a letter is kept after its last failure before it expires to the archive; `nil` keeps
        /// letters until people act. Default 7 days.
        public var timeToLive: Duration?
        /// How many letters the store may hold and what happens beyond. Default unbounded.
        public var limits: DeadLetterLimits
        /// Where expired, dropped and purged letters go; `nil` deletes them (and logs how many). Default `nil`.
        public var archive: (any DeadLetterArchive)?
        /// The bounds of the adaptive cleanup interval: the queue looks for expired letters sooner when many
        /// expire soon. Default 1 second to 5 minutes.
        public var cleanupInterval: ClosedRange<Duration>
        /// How many due letters one claim takes. Default 100.
        public var batchSize: Int
        /// How many letters are run at once by ``DeadLetterQueue/run()``. Default 4.
        public var concurrency: Int
        /// How long a claimed letter stays leased to this instance; a crashed instance's letters are claimed
        /// again after it. Keep it longer than the slowest handler. Default 5 minutes.
        public var leaseDuration: Duration
        /// How often ``DeadLetterQueue/run()`` looks for due letters when idle. Default 1 second.
        public var pollInterval: Duration
        /// The metadata keys whose values are redacted before storage, matched ignoring case.
        /// Default ``MetadataRedactor/defaultKeys``.
        public var redactedMetadataKeys: Set<String>
        /// After this many failed replays or redrives a letter is parked. Default 3.
        public var parkAfterFailedReplays: Int
        /// After this many claims that ended without an outcome (the lease ran out: the process died or hung
        /// while running the letter) a letter is parked instead of being run again: a poison letter.
        /// Default 3.
        public var parkAfterAbandonedClaims: Int
        /// The circuit breaker of each source; `nil` for none. Default ``CircuitBreakerConfiguration/init()``.
        public var circuitBreaker: CircuitBreakerConfiguration?
        /// How long in-flight work may take to finish at graceful shutdown before it is cancelled (its
        /// letters then stay in the store, claimable again). Default 10 seconds.
        public var shutdownGracePeriod: Duration
        /// Decides the reason of an error. Default ``FailureClassifier/default``.
        public var classifier: FailureClassifier
        /// The name of this instance, the owner of its leases. Default a random id.
        public var instanceID: String
        /// Where the queue logs. Default a logger labelled `dead-letters`.
        public var logger: Logger
        /// Where the queue's metrics go; `nil` for the globally bootstrapped `MetricsSystem`. Default `nil`.
        public var metricsFactory: (any MetricsFactory)?
        /// Encrypts payloads at rest with AES-GCM: the queue wraps its store in an
        /// ``EncryptedDeadLetterStore``, so the store holds only sealed payloads. `nil` stores payloads as
        /// received. Default `nil`.
        public var payloadEncryption: PayloadEncryption?
        /// How long operations (redrives, replays, purges, …: the audit log) are kept after they were created;
        /// older ones are pruned by the queue's cleanup and by `dlq` commands that write. Default 30 days.
        public var operationRetention: Duration
        /// How often a running queue (``DeadLetterQueue/run()``) refreshes its instance record in the store; an
        /// instance not seen for 3 of these is gone. Default 5 seconds.
        public var instanceHeartbeat: Duration

        /// Creates a configuration with the defaults.
        public init() {
            self.retryPolicy = .default
            self.timeToLive = .seconds(7 * 86_400)
            self.limits = .unbounded
            self.archive = nil
            self.cleanupInterval = .seconds(1) ... .seconds(300)
            self.batchSize = 100
            self.concurrency = 4
            self.leaseDuration = .seconds(300)
            self.pollInterval = .seconds(1)
            self.redactedMetadataKeys = MetadataRedactor.defaultKeys
            self.parkAfterFailedReplays = 3
            self.parkAfterAbandonedClaims = 3
            self.circuitBreaker = CircuitBreakerConfiguration()
            self.shutdownGracePeriod = .seconds(10)
            self.classifier = .default
            self.instanceID = DeadLetterIDGenerator().next(at: .now)
            self.logger = Logger(label: "dead-letters")
            self.metricsFactory = nil
            self.payloadEncryption = nil
            self.operationRetention = .seconds(30 * 86_400)
            self.instanceHeartbeat = .seconds(5)
        }

        /// Checks every value.
        /// - Throws: ``DeadLetterError`` with code `invalidConfiguration`, naming the field.
        public func validate() throws {
            func invalid(_ field: String, _ message: String) -> DeadLetterError {
                DeadLetterError(code: .invalidConfiguration, message: message, field: field)
            }
            try self.retryPolicy.validate()
            if let ttl = self.timeToLive, ttl <= .zero {
                throw invalid("timeToLive", "must be positive, or nil to keep letters forever")
            }
            if let maxEntries = self.limits.maxEntries, maxEntries < 1 {
                throw invalid("limits.maxEntries", "must be at least 1, or nil for no limit")
            }
            if let maxBytes = self.limits.maxBytes, maxBytes < 1 {
                throw invalid("limits.maxBytes", "must be at least 1, or nil for no limit")
            }
            if self.cleanupInterval.lowerBound <= .zero {
                throw invalid("cleanupInterval", "the shortest interval must be positive")
            }
            if self.batchSize < 1 { throw invalid("batchSize", "must be at least 1") }
            if self.concurrency < 1 { throw invalid("concurrency", "must be at least 1") }
            if self.leaseDuration <= .zero { throw invalid("leaseDuration", "must be positive") }
            if self.pollInterval <= .zero { throw invalid("pollInterval", "must be positive") }
            if self.parkAfterFailedReplays < 1 { throw invalid("parkAfterFailedReplays", "must be at least 1") }
            if self.parkAfterAbandonedClaims < 1 { throw invalid("parkAfterAbandonedClaims", "must be at least 1") }
            if self.shutdownGracePeriod < .zero { throw invalid("shutdownGracePeriod", "must not be negative") }
            if self.instanceID.isEmpty { throw invalid("instanceID", "must not be empty") }
            if self.operationRetention <= .zero { throw invalid("operationRetention", "must be positive") }
            if self.instanceHeartbeat <= .zero { throw invalid("instanceHeartbeat", "must be positive") }
            try self.circuitBreaker?.validate()
        }

        /// The lifecycle of the queue's letters: its retry policy, parking limits and time to live.
        public var lifecycle: DeadLetterLifecycle {
            DeadLetterLifecycle(
                retryPolicy: self.retryPolicy,
                parkAfterFailedReplays: self.parkAfterFailedReplays,
                parkAfterAbandonedClaims: self.parkAfterAbandonedClaims,
                timeToLive: self.timeToLive
            )
        }
    }
}
