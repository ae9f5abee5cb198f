//! Shared pieces of the comparison benchmarks.
