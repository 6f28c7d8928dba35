import CLibFuzzer
import DeadLettersTesting
import Foundation

/// libFuzzer's entry point: one input through ``FuzzChecks/decoder(_:)``; a broken property stops the run as a
/// crash, whose input libFuzzer keeps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        try FuzzChecks.decoder(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        fatalError("FuzzChecks.decoder: \(error)")
    }
    return 0
}

// SwiftPM gives the executable this file's `main`, not libFuzzer's: it runs libFuzzer's driver itself, with
// libFuzzer's flags from the command line (-max_total_time, corpus folders, …).
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzDecoder(data, size) })
