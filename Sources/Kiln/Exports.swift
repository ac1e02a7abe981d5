@_exported import KilnGraph
@_exported import KilnCPU
