import Foundation
import Kiln

/// Per-entity precision, recall and F1 lines.
func printNER(_ ner: NERMetrics) {
    for (type, s) in ner.perType.sorted(by: { $0.key < $1.key }) {
        print(String(format: "    %-6@ precision %.3f  recall %.3f  F1 %.3f  (%d gold)", type, s.precision, s.recall, s.f1, s.gold))
    }
}
