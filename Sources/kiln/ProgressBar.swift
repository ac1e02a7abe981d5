import Foundation
import Kiln

/// A live progress bar on a terminal; a line per tenth of an epoch otherwise.
final class ProgressBar: @unchecked Sendable {
    let terminal = isatty(STDOUT_FILENO) != 0
    var lastTenth = -1

    func update(_ p: TrainingProgress) {
        if terminal {
            let width = 30, done = width * p.step / max(p.stepsInEpoch, 1)
            let bar = String(repeating: "=", count: done) + String(repeating: " ", count: width - done)
            print(String(format: "\repoch %d [%@] %d/%d  loss %.4f  %.0f ex/s  ETA %.0f s ", p.epoch, bar, p.step, p.stepsInEpoch,
                         p.loss, p.examplesPerSecond, p.secondsLeft), terminator: "")
            fflush(nil)
        } else {
            let tenth = 10 * p.step / max(p.stepsInEpoch, 1)
            if tenth != lastTenth && (tenth > 0 || p.step == 1) {
                lastTenth = tenth
                print(String(format: "epoch %d step %d/%d  loss %.4f  %.0f ex/s  ETA %.0f s", p.epoch, p.step, p.stepsInEpoch,
                             p.loss, p.examplesPerSecond, p.secondsLeft))
            }
        }
    }

    func finish() {
        if terminal { print("") }
        lastTenth = -1
    }
}
