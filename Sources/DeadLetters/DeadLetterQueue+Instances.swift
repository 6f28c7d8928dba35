import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension DeadLetterQueue {
    /// While the queue runs: keeps this instance's record in the store (host, process id, version, the
    /// sources with a handler, a heartbeat every ``Configuration/instanceHeartbeat``), so that people
    /// redriving letters see who is listening; removes it at graceful shutdown.
    func instanceLoop() async {
        let startedAt = self.clock.now()
        var unsupported = false
        while !self.isShuttingDown, !unsupported {
            let now = self.clock.now()
            let instance = DeadLetterInstance(
                id: self.configuration.instanceID,
                host: Self.hostName,
                pid: Int(getpid()),
                version: Self.version,
                sources: self.handlers.withLock { Array($0.keys) },
                startedAt: startedAt,
                lastSeenAt: now
            )
            do {
                try await self.store.saveInstance(instance)
            } catch let error as DeadLetterError where error.code == .unsupported {
                unsupported = true
            } catch {
                self.logger.warning("could not record this instance's heartbeat", metadata: ["error": "\(error)"])
            }
            await self.instanceWakeups.wait(until: now.adding(self.configuration.instanceHeartbeat), clock: self.clock)
        }
        if !unsupported {
            do {
                try await self.store.removeInstance(id: self.configuration.instanceID)
            } catch {
                self.logger.warning("could not remove this instance's record", metadata: ["error": "\(error)"])
            }
        }
    }

    /// This machine's host name, or `localhost`.
    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, 255) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
