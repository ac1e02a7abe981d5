import Foundation

/// Builds the next batch on another thread while the device runs the current step.
final class Prefetcher: @unchecked Sendable {
    let data: any Dataset
    init(data: any Dataset) { self.data = data }

    final class Pending: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var result: Result<[String: HostTensor], Error> = .failure(KilnError.device("batch not ready"))
        func wait() throws -> [String: HostTensor] {
            done.wait()
            return try result.get()
        }
    }

    func start(_ indices: [Int]) -> Pending {
        let p = Pending()
        let data = self.data
        DispatchQueue.global().async {
            p.result = Result { try data.batch(indices) }
            p.done.signal()
        }
        return p
    }
}
