import ArgumentParser
import Foundation

/// After a stop requested by Ctrl-C: writes the checkpoint (`save`, when there is one), says
/// where training stopped and how to resume, and exits with 130.
func stopInterrupted(at: String, checkpoint: String?, say: (String) -> Void, save: (String) throws -> Void) throws -> Never {
    guard let checkpoint else {
        say("Interrupted at \(at). No --checkpoint was given, so nothing was saved.")
        throw ExitCode(130)
    }
    try save(checkpoint)
    var args = Array(CommandLine.arguments.dropFirst())
    if !args.contains("--resume") { args.append("--resume") }
    say("Interrupted at \(at). Checkpoint written to \(checkpoint).")
    say("Resume with: kiln \(args.joined(separator: " "))")
    throw ExitCode(130)
}

/// Set by the first Ctrl-C (SIGINT): training finishes its step, writes the checkpoint and
/// stops. A second Ctrl-C exits at once.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var source: DispatchSourceSignal?

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return count > 0 }

    static func install() -> InterruptFlag {
        let flag = InterruptFlag()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [flag] in
            flag.lock.lock()
            flag.count += 1
            let n = flag.count
            flag.lock.unlock()
            if n == 1 {
                FileHandle.standardError.write(Data("\nStopping after this step (Ctrl-C again to quit at once)...\n".utf8))
            } else {
                exit(130)
            }
        }
        source.resume()
        flag.source = source
        return flag
    }
}
