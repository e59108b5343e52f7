#pragma once
// Heap setup for LibTorch on CPU. LibTorch's CPU allocator takes every tensor from malloc and
// gives it back on release. glibc serves a block over its mmap threshold (at most 32 MiB) with a
// fresh mmap and unmaps it on free, so each large activation (ResNet-50 at batch 32: 100 MB
// tensors) page-faults in again on every forward; ResNet-50 batch-32 inference ran 2.2x faster
// with the heap kept (docs/performance.md). The cost is a higher, stable resident size.

namespace rla::util {

/// Makes glibc serve all allocations from its heap and never trim it (mallopt M_MMAP_MAX = 0,
/// M_TRIM_THRESHOLD = max), unless the environment sets RLA_SYSTEM_MALLOC (any value). Call
/// it first thing in main (load_model calls it for the fast path); calling it again changes
/// nothing. Returns true when the setting was applied (false off glibc).
bool keep_freed_memory();

}  // namespace rla::util
