import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Answers a request that HTTP/1.1 parsing refuses before any route runs (a malformed `Content-Length`, a NUL
/// in a header, an unknown or lower-case method, a request line and headers over 80 KiB) with the API's JSON
/// error body, then closes the connection.
///
/// It sits in the channel pipeline after the HTTP/1 codec and before Hummingbird's own handling, which would
/// otherwise answer 400 with an empty body. A refusal that comes while a response is still being written (a
/// pipelined request after a good one) is left to Hummingbird.
final class AdminMalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Requests read whose response has not ended yet.
    private var unanswered = 0
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = self.unwrapInboundIn(data) { self.unanswered += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.unanswered -= 1 }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard self.unanswered == 0, !self.answered, let refusal = Self.refusal(error) else {
            context.fireErrorCaught(error)
            return
        }
        self.answered = true
        var body = #"{"error":{"code":"#
        body += JSONText.string(refusal.code)
        body += #","message":"#
        body += JSONText.string(refusal.message)
        body += "}}\n"
        let bytes = ByteBuffer(string: body)
        let head = HTTPResponse(
            status: refusal.status,
            headerFields: [
                .contentType: "application/json; charset=utf-8",
                .contentLength: "\(bytes.readableBytes)",
                .cacheControl: "no-store",
                .connection: "close",
            ]
        )
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(bytes)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }

    /// The answer to a parsing error, or `nil` for an error that is not about the request's bytes.
    static func refusal(_ error: any Error) -> (status: HTTPResponse.Status, code: String, message: String)? {
        if let conversion = error as? HTTP1TypeConversionError {
            guard conversion == .invalidMethod || conversion == .missingPath else { return nil }
            return (.badRequest, "invalidRequest", "the request is not valid HTTP/1.1: its method or path is invalid")
        }
        guard let parser = error as? HTTPParserError else { return nil }
        let problem: String
        switch parser {
        case .headerOverflow:
            return (
                .requestHeaderFieldsTooLarge, "requestTooLarge",
                "the request line and headers are larger than the server reads (80 KiB)"
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
        return (.badRequest, "invalidRequest", "the request is not valid HTTP/1.1: \(problem)")
    }
}
