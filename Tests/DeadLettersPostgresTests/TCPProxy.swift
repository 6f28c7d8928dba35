import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP proxy on 127.0.0.1 in front of the test server, that a test can take away (connections refused, open
/// ones cut, as when the server is stopped) and bring back on the same port.
final class TCPProxy: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let port: Int
    private let targetPort: Int
    private let state = Mutex<(listener: Int32, sockets: Set<Int32>)>((-1, []))

    init(targetPort: Int) throws {
        self.targetPort = targetPort
        let listener = try Self.listen(port: 0)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        self.state.withLock { $0.listener = listener }
        self.acceptLoop(listener)
    }

    deinit {
        self.takeAway()
    }

    /// Refuses new connections and cuts the open ones.
    func takeAway() {
        let (listener, sockets) = self.state.withLock { state in
            defer { state = (-1, []) }
            return (state.listener, state.sockets)
        }
        if listener >= 0 {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// Accepts connections again, on the same port.
    func bringBack() throws {
        let listener = try Self.listen(port: self.port)
        self.state.withLock { $0.listener = listener }
        self.acceptLoop(listener)
    }

    private static func listen(port: Int) throws -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #if canImport(Glibc)
        let listening = Glibc.listen(fd, 64)
        #else
        let listening = Darwin.listen(fd, 64)
        #endif
        guard bound == 0, listening == 0 else {
            close(fd)
            throw Failure(description: "cannot listen on 127.0.0.1:\(port)")
        }
        return fd
    }

    private func acceptLoop(_ listener: Int32) {
        Thread {
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                guard let server = self.connectToTarget() else {
                    close(client)
                    continue
                }
                let kept = self.state.withLock { state -> Bool in
                    guard state.listener == listener else { return false }
                    state.sockets.formUnion([client, server])
                    return true
                }
                guard kept else {
                    close(client)
                    close(server)
                    return
                }
                let pair = Pair(client, server)
                self.pump(from: client, to: server, pair)
                self.pump(from: server, to: client, pair)
            }
        }.start()
    }

    private func connectToTarget() -> Int32? {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(self.targetPort).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// The two sockets of a proxied connection, closed when both directions have ended.
    private final class Pair: Sendable {
        let sockets: (Int32, Int32)
        private let running = Mutex(2)
        init(_ a: Int32, _ b: Int32) { self.sockets = (a, b) }
        /// Whether the caller ended last.
        func end() -> Bool {
            self.running.withLock { running in
                running -= 1
                return running == 0
            }
        }
    }

    /// Copies bytes from `source` to `target` until either closes, then cuts both.
    private func pump(from source: Int32, to target: Int32, _ pair: Pair) {
        Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                var offset = 0
                while offset < count {
                    // MSG_NOSIGNAL: a peer that is gone is an error here, not a SIGPIPE for the test process.
                    let written = buffer.withUnsafeBytes {
                        send(target, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL))
                    }
                    if written <= 0 { break }
                    offset += written
                }
                if offset < count { break }
            }
            shutdown(source, Int32(SHUT_RDWR))
            shutdown(target, Int32(SHUT_RDWR))
            if pair.end() {
                self.state.withLock { $0.sockets.subtract([pair.sockets.0, pair.sockets.1]) }
                close(pair.sockets.0)
                close(pair.sockets.1)
            }
        }.start()
    }
}
