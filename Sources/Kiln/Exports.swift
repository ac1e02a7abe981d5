@_exported import KilnGraph
@_exported import KilnCompiler
@_exported import KilnCPU
@_exported import KilnOpenCL
@_exported import KilnMPI
