// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Kiln",
    products: [
        .library(name: "Kiln", targets: ["Kiln"]),
        .executable(name: "kiln", targets: ["kiln"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Symbolic tensors, shape rules, gradient rules, autodiff.
        .target(name: "KilnGraph"),
        // Fusion, schedule and memory plan: a graph becomes a backend-neutral Program.
        .target(name: "KilnCompiler", dependencies: ["KilnGraph"]),
        // The reference backend: plain loops, generic over Float and Double; the oracle for tests.
        .target(name: "KilnCPU", dependencies: ["KilnGraph", "KilnCompiler", "COpenBLAS", "CThreadSupport", "CVectorMath"]),
        // The CPU backend's Float loops (exp, tanh, softmax rows, fused arithmetic), cloned for
        // AVX-512 and AVX2 (Swift code stays SSE2).
        .target(name: "CVectorMath"),
        // Spin-wait hints and thread pinning for the CPU backend's workers and PoCL's.
        .target(name: "CThreadSupport"),
        // BLAS for the CPU backend's matmuls (Debian: libopenblas-dev).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        // The OpenCL C API (Debian: ocl-icd-opencl-dev, opencl-headers).
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL", providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        // zlib, for gzip-compressed datasets (Debian: zlib1g-dev).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The OpenCL C sources, embedded into the binary.
        .target(
            name: "KilnKernels",
            path: "Kernels",
            exclude: [],
            // Each kernel file: KernelSources.swift names it too (a test checks every .cl is there).
            resources: ["prelude.cl", "elementwise.cl", "matmul.cl", "matmul_vector.cl", "reduce.cl", "reduce_columns.cl",
                        "softmax_xent.cl", "softmax.cl", "normalize.cl", "embedding.cl", "argmax.cl"]
                .map { .embedInCode($0) }
        ),
        // The OpenCL backend: devices, buffers, program builds, launches, code generation.
        .target(name: "KilnOpenCL", dependencies: ["KilnGraph", "KilnCompiler", "COpenCL", "KilnKernels", "CThreadSupport"]),
        // MPI (Open MPI, opened at run time) for data-parallel jobs under mpirun.
        .target(name: "KilnMPI", dependencies: ["KilnGraph", "KilnCompiler"]),
        // The public face: re-exports the graph and backends, adds checks and models.
        .target(name: "Kiln", dependencies: ["KilnGraph", "KilnCompiler", "KilnCPU", "KilnOpenCL", "KilnMPI", "CZlib"]),
        .executableTarget(
            name: "kiln",
            dependencies: ["Kiln", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Examples of the library's general training API, built and run briefly by the tests.
        .executableTarget(name: "regression", dependencies: ["Kiln"], path: "Examples/Regression"),
        .executableTarget(name: "autoencoder", dependencies: ["Kiln"], path: "Examples/Autoencoder"),
        .executableTarget(name: "classifier", dependencies: ["Kiln"], path: "Examples/Classifier"),
        .testTarget(name: "KilnTests", dependencies: ["Kiln", "kiln", "regression", "autoencoder", "classifier"]),
        .testTarget(name: "KilnDataTests", dependencies: ["Kiln"]),
    ],
    swiftLanguageModes: [.v6]
)
