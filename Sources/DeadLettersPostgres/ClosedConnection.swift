/// A statement was not sent: its connection was already closed (the server went away).
struct ClosedConnection: Error, CustomStringConvertible {
    var description: String { "the connection was closed" }
}
