import Kiln

/// What a checkpoint says about its run.
enum CheckpointInfo {
    /// The NER vocabulary and tag set stored in a checkpoint's metadata.
    static func nerVocabulary(path: String) throws -> (Vocabulary, TagSet) {
        let file = try SafeTensorsFile.read(path: path)
        guard let words = file.metadata["vocabulary"], let tags = file.metadata["tags"] else {
            throw KilnError.file(path: path, message: "checkpoint has no NER vocabulary and tags in its metadata (is it from another task?)")
        }
        return (Vocabulary(words: words.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)),
                TagSet(tags: tags.split(separator: "\n").map(String.init)))
    }
}
