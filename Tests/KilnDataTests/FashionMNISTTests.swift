import Testing
import Kiln

/// The real Fashion-MNIST files, where the Debian package `dataset-fashion-mnist` is installed.
@Suite struct FashionMNISTTests {
    @Test func loadsBothSplits() throws {
        let directory = ImageDataset.defaultFashionMNISTDirectory
        guard fileExistsAt(directory + "/train-labels-idx1-ubyte.gz") || fileExistsAt(directory + "/train-labels-idx1-ubyte") else {
            print("skipped: Fashion-MNIST not found in \(directory) (apt-get install dataset-fashion-mnist)")
            return
        }
        let train = try ImageDataset.load(directory: directory, split: .train)
        #expect(train.count == 60000 && train.features == 784)
        #expect(train.images.count == 60000 * 784 && train.labels.count == 60000)
        let test = try ImageDataset.load(directory: directory, split: .test)
        #expect(test.count == 10000 && test.features == 784)
        #expect(test.images.count == 10000 * 784 && test.labels.count == 10000)
        let firstImages = train.images[0..<(100 * 784)]
        #expect(firstImages.allSatisfy { $0 >= 0 && $0 <= 1 } && firstImages.contains(1))
        // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
        var perClass = [Int](repeating: 0, count: 10)
        for l in train.labels { perClass[Int(l)] += 1 }
        #expect(perClass == [Int](repeating: 6000, count: 10))
        perClass = [Int](repeating: 0, count: 10)
        for l in test.labels { perClass[Int(l)] += 1 }
        #expect(perClass == [Int](repeating: 1000, count: 10))
    }
}
