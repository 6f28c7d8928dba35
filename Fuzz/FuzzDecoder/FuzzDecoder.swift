import DeadLettersTesting

/// libFuzzer's entry point: the JSON Lines decoder (one line, and a file through ``JSONLinesReader``) on every
/// input; a broken property of ``FuzzChecks/decoder(_:)`` stops the run as a crash, whose input libFuzzer keeps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try FuzzChecks.decoder(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        fatalError("FuzzChecks.decoder: \(error)")
    }
    return 0
}
