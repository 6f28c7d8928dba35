import DeadLettersTesting

/// libFuzzer's entry point: the filters' time and age parsers, timestamps, fingerprints and id checks on every
/// input; a broken property of ``FuzzChecks/parsers(_:)`` stops the run as a crash, whose input libFuzzer keeps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParsers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try FuzzChecks.parsers(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        fatalError("FuzzChecks.parsers: \(error)")
    }
    return 0
}
