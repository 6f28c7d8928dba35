import Hummingbird
import NIOCore

/// The request context of ``DeadLetterAdminServer``: Hummingbird's basic context and the peer's address, so
/// that a server without a token can name who acted (`anonymous@127.0.0.1`) in the letters' history.
struct AdminRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    /// The address of the client that sent the request.
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

extension DeadLetterAdminRoutes {
    /// Who sent a request, for the letters' history: with a token, the token's name (`admin` for the single
    /// `--token`, the name given with each of ``Configuration/tokens``); without one, `anonymous@<remote address>` (just `anonymous` when the context does not know
    /// the address).
    func actor(_ context: some RequestContext) -> String {
        if let identity = AdminIdentity.current { return identity.name }
        if self.configuration.hasTokens { return "admin" }
        guard let address = (context as? any RemoteAddressRequestContext)?.remoteAddress else { return "anonymous" }
        return "anonymous@\(address.ipAddress ?? address.pathname ?? "unknown")"
    }
}
