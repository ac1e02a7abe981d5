import Testing
import Kiln

@Suite struct NERMetricsTests {
    /// Worked by hand:
    /// sentence 0 gold: [Anna Berg]PER said in [Oslo]LOC
    ///            pred: [Anna]PER [Berg]PER said in [Oslo]LOC   -> PER wrong twice (boundaries), LOC right
    /// sentence 1 gold: [Acme Corp]ORG hired [Bo]PER
    ///            pred: [Acme Corp]ORG hired [Bo]LOC            -> ORG right, Bo has the wrong type
    /// Gold spans: PER 2, LOC 1, ORG 1 (4). Predicted: PER 2, LOC 2, ORG 1 (5). Correct: LOC 1, ORG 1.
    @Test func handWorkedExample() throws {
        let gold = [["B-PER", "I-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "B-PER"]]
        let predicted = [["B-PER", "B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "B-LOC"]]
        let m = try NERMetrics(gold: gold, predicted: predicted)
        #expect(m.perType["PER"] == NERMetrics.Score(correct: 0, predicted: 2, gold: 2))
        #expect(m.perType["LOC"] == NERMetrics.Score(correct: 1, predicted: 2, gold: 1))
        #expect(m.perType["ORG"] == NERMetrics.Score(correct: 1, predicted: 1, gold: 1))
        let loc = try #require(m.perType["LOC"])
        #expect(loc.precision == 0.5 && loc.recall == 1 && abs(loc.f1 - 2.0 / 3) < 1e-12)
        #expect(m.perType["PER"]?.f1 == 0)
        #expect(m.overall == NERMetrics.Score(correct: 2, predicted: 5, gold: 4))
        #expect(abs(m.overall.precision - 0.4) < 1e-12 && m.overall.recall == 0.5)
        #expect(abs(m.overall.f1 - 2 * 0.4 * 0.5 / 0.9) < 1e-12)
    }

    @Test func spanRulesFollowConlleval() {
        func spans(_ tags: [String]) -> [String] {
            NERMetrics.spans(tags).map { "\($0.type)\($0.range.lowerBound)-\($0.range.upperBound)" }
        }
        #expect(spans(["B-PER", "I-PER", "O", "B-LOC"]) == ["PER0-2", "LOC3-4"])
        // An I- after O, or after another type, starts a span (IOB1 and sloppy predictions).
        #expect(spans(["I-PER", "I-PER", "I-LOC", "O", "I-ORG"]) == ["PER0-2", "LOC2-3", "ORG4-5"])
        #expect(spans(["B-PER", "B-PER", "I-PER"]) == ["PER0-1", "PER1-3"])
        #expect(spans(["B-PER", "I-LOC"]) == ["PER0-1", "LOC1-2"])
        #expect(spans(["O", "O"]).isEmpty)
        #expect(spans(["B-MISC"]) == ["MISC0-1"])
    }

    @Test func perfectAndMismatched() throws {
        let tags = [["B-PER", "I-PER", "O"], ["O", "B-ORG"]]
        let perfect = try NERMetrics(gold: tags, predicted: tags)
        #expect(perfect.overall.f1 == 1 && perfect.perType.count == 2)
        let m = Support.message { _ = try NERMetrics(gold: tags, predicted: [["O"], ["O", "O"]]) }
        #expect(m.contains("sentence 0") && m.contains("3 gold tags but 1 predicted"), "\(m)")
        let m2 = Support.message { _ = try NERMetrics(gold: tags, predicted: []) }
        #expect(m2.contains("2 gold sentences but 0 predicted"), "\(m2)")
        let empty = try NERMetrics(gold: [["O"]], predicted: [["O"]])
        #expect(empty.overall.f1 == 0 && empty.perType.isEmpty)
    }
}
