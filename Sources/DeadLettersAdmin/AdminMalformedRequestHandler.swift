import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Answers, with the API's JSON error body, the requests that no route can: those HTTP/1.1 parsing refuses
/// before any route runs (a malformed `Content-Length`, a NUL in a header, an unknown or lower-case method,
/// a request line and headers over 80 KiB), and `CONNECT`, whose answer SwiftNIO's encoder would send without
/// a body. Then it closes the connection.
///
/// It sits in the channel pipeline after the HTTP/1 codec and before Hummingbird's own handling, which would
/// otherwise answer 400 with an empty body. A refusal that comes while an earlier request is still being
/// answered (pipelining) is sent after that answer; one that comes in the middle of a request's body is left
/// to the route reading it.
final class AdminMalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// An answer that no route gives.
    struct Refusal {
        var status: HTTPResponse.Status
        var code: String
        var message: String
        var allow: String?
    }

    /// Requests read whose response has not ended yet.
    private var unanswered = 0
    /// Whether a request's head was read and its end not yet.
    private var reading = false
    /// A refusal waiting for the earlier responses to end.
    private var pending: Refusal?
    /// Whether the connection is being refused: nothing more is read or answered.
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.refused else { return }
        switch self.unwrapInboundIn(data) {
        case .head(let request) where request.method == .connect:
            // The answer to a CONNECT cannot carry a body through SwiftNIO's encoder: written past it.
            self.refuseWhenAnswered(
                Refusal(
                    status: .methodNotAllowed,
                    code: "methodNotAllowed",
                    message: "CONNECT is not allowed: this server is not a proxy",
                    allow: ""
                ),
                context: context
            )
            return
        case .head:
            self.unanswered += 1
            self.reading = true
        case .end:
            self.reading = false
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = self.unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        self.unanswered -= 1
        context.write(data, promise: promise)
        if self.unanswered == 0, let pending = self.pending {
            self.pending = nil
            self.refuse(pending, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Once refused, the connection has nothing more to say.
        guard !self.refused else { return }
        guard !self.reading, let refusal = Self.refusal(error) else {
            context.fireErrorCaught(error)
            return
        }
        self.refuseWhenAnswered(refusal, context: context)
    }

    /// Stops reading, and refuses once the requests read before are answered.
    private func refuseWhenAnswered(_ refusal: Refusal, context: ChannelHandlerContext) {
        self.refused = true
        if self.unanswered == 0 {
            self.refuse(refusal, context: context)
        } else {
            self.pending = refusal
        }
    }

    /// Writes `refusal` as the last answer on the connection, then closes it.
    private func refuse(_ refusal: Refusal, context: ChannelHandlerContext) {
        var body = #"{"error":{"code":"#
        body += JSONText.string(refusal.code)
        body += #","message":"#
        body += JSONText.string(refusal.message)
        body += "}}\n"
        var head = "HTTP/1.1 \(refusal.status.code) \(refusal.status.reasonPhrase)\r\n"
        if let allow = refusal.allow { head += "Allow: \(allow)\r\n" }
        head += "Content-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n"
        head += "X-Content-Type-Options: nosniff\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let bytes = context.channel.allocator.buffer(string: head + body)
        // Raw bytes, written from the response encoder's place in the pipeline towards the socket.
        let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let written: EventLoopFuture<Void>
        if let encoder {
            written = encoder.writeAndFlush(NIOAny(bytes))
        } else {
            written = context.eventLoop.makeSucceededVoidFuture()
        }
        written.whenComplete { _ in bound.value.close(promise: nil) }
    }

    /// The answer to an error of parsing, or `nil` for an error that is not about the request's bytes.
    static func refusal(_ error: any Error) -> Refusal? {
        if let conversion = error as? HTTP1TypeConversionError {
            guard conversion == .invalidMethod || conversion == .missingPath else { return nil }
            return Refusal(
                status: .badRequest,
                code: "invalidRequest",
                message: "the request is not valid HTTP/1.1: its method or path is invalid"
            )
        }
        guard let parser = error as? HTTPParserError else { return nil }
        let problem: String
        switch parser {
        case .headerOverflow:
            return Refusal(
                status: .requestHeaderFieldsTooLarge,
                code: "requestTooLarge",
                message: "the request line and headers are larger than the server reads (80 KiB)"
            )
        case .invalidMethod: problem = "unknown method (methods are upper case: GET, POST, DELETE)"
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
            problem = "invalid request target"
        case .invalidContentLength, .unexpectedContentLength: problem = "invalid Content-Length"
        case .invalidChunkSize: problem = "invalid chunk size in a chunked body"
        case .invalidHeaderToken: problem = "invalid character in a header"
        case .invalidVersion: problem = "invalid HTTP version"
        case .invalidCharactersUsed, .lfExpected, .invalidConstant, .strictModeAssertion:
            problem = "invalid character or line ending"
        default: problem = "it cannot be parsed"
        }
        return Refusal(
            status: .badRequest,
            code: "invalidRequest",
            message: "the request is not valid HTTP/1.1: \(problem)"
        )
    }
}
