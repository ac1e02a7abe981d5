import Testing
import Kiln

@Suite struct BatchTests {
    @Test func everyIndexOncePerEpoch() throws {
        let batches = Array(try BatchIterator(count: 10, batchSize: 4, seed: 1, epoch: 0, dropLast: false))
        #expect(batches.map(\.count) == [4, 4, 2])
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<10))
        #expect(batches.flatMap { $0 } != Array(0..<10))  // shuffled
        let dropped = Array(try BatchIterator(count: 10, batchSize: 4, seed: 1, epoch: 0, dropLast: true))
        #expect(dropped.map(\.count) == [4, 4] && dropped == Array(batches.prefix(2)))
        #expect(try BatchIterator(count: 10, batchSize: 4, seed: 1, epoch: 0, dropLast: true).batchCount == 2)
        #expect(try BatchIterator(count: 10, batchSize: 4, seed: 1, epoch: 0, dropLast: false).batchCount == 3)
    }

    @Test func reproduciblePerSeedAndEpoch() throws {
        func order(_ seed: UInt64, _ epoch: Int) throws -> [Int] {
            try BatchIterator(count: 100, batchSize: 7, seed: seed, epoch: epoch, dropLast: false).order
        }
        #expect(try order(3, 0) == order(3, 0))
        #expect(try order(3, 0) != order(3, 1))
        #expect(try order(3, 1) != order(4, 1))
        #expect(try order(3, 5).sorted() == Array(0..<100))
        // Pinned (value from an independent Python SplitMix64 + Lemire + Fisher–Yates), so a change
        // to the shuffle, which would change every training run, is noticed.
        #expect(try BatchIterator(count: 8, batchSize: 8, seed: 42, epoch: 0, dropLast: false).order == [1, 3, 4, 5, 0, 7, 6, 2])
    }

    @Test func unshuffledAndEdgeCases() throws {
        #expect(Array(try BatchIterator(count: 5, batchSize: 2, seed: 0, epoch: 0, dropLast: false, shuffle: false)) == [[0, 1], [2, 3], [4]])
        #expect(Array(try BatchIterator(count: 0, batchSize: 2, seed: 0, epoch: 0, dropLast: false)).isEmpty)
        #expect(Array(try BatchIterator(count: 3, batchSize: 5, seed: 0, epoch: 0, dropLast: true)).isEmpty)
        let m = Support.message { _ = try BatchIterator(count: 3, batchSize: 0, seed: 0, epoch: 0, dropLast: true) }
        #expect(m.contains("batch size 0"), "\(m)")
    }
}
