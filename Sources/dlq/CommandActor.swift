import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who runs this `dlq`, for the letters' history: `DLQ_ACTOR` when set, else `user@host`.
enum CommandActor {
    static var current: String {
        let environment = ProcessInfo.processInfo.environment
        if let actor = environment["DLQ_ACTOR"]?.trimmingCharacters(in: .whitespaces), !actor.isEmpty {
            return actor
        }
        var user = environment["USER"] ?? environment["LOGNAME"] ?? ""
        if user.isEmpty, let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            user = String(cString: name)
        }
        if user.isEmpty { user = "uid\(geteuid())" }
        var host = [UInt8](repeating: 0, count: 256)
        let hostName =
            host.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { gethostname($0.baseAddress!, 255) }
            } == 0 ? String(decoding: host.prefix { $0 != 0 }, as: UTF8.self) : "localhost"
        return "\(user)@\(hostName)"
    }
}
