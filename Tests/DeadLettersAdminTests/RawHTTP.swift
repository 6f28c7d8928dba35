import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends `request` as is on a new TCP connection to the test server and returns everything it answers, so a
/// test can send what an HTTP client library would not (a foreign `Host`).
func rawHTTP(port: Int, _ request: String) throws -> String {
    struct ConnectFailed: Error {}
    var hints = addrinfo()
    #if canImport(Glibc)
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    #else
    hints.ai_socktype = SOCK_STREAM
    #endif
    var list: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo("localhost", String(port), &hints, &list) == 0, let first = list else { throw ConnectFailed() }
    defer { freeaddrinfo(list) }
    var candidate: UnsafeMutablePointer<addrinfo>? = first
    while let info = candidate {
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        if fd >= 0, connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
            defer { close(fd) }
            // A server that never answers fails the test instead of hanging it.
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var bytes = Array(request.utf8)
            _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                answer += buffer[0..<count]
            }
            return String(decoding: answer, as: UTF8.self)
        }
        if fd >= 0 { close(fd) }
        candidate = info.pointee.ai_next
    }
    throw ConnectFailed()
}

/// ``rawHTTP(port:_:)`` on a thread of its own: its blocking reads must not hold one of the few threads that
/// run the server's request handlers (with tests in parallel, they could all be blocked).
func rawHTTPOffPool(port: Int, _ request: String) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try rawHTTP(port: port, request) }) }.start()
    }
}
