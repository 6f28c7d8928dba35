import Testing

/// Every suite of the `dlq` command's tests, run one test at a time.
///
/// These tests wait for `dlq` processes synchronously, and each such wait holds a thread of Swift's cooperative
/// pool (two threads on a 2-core machine) for as long as the test runs. Two of them at once starved every other
/// test in the process: the admin tests' HTTP clients timed out after 15 s with no thread to run on.
@Suite(.serialized) enum DLQCommandSuites {}
