/// A value handed to a child task of a group that ends before the value's scope does.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
