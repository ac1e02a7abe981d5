/// An error that every process of a job raised alike (a configuration that differs between
/// them): each can report it and exit, with no need to stop the others.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
