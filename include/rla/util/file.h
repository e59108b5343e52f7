#pragma once
// Atomic file replacement, for everything the tool writes that a crash must not leave half
// written (checkpoints, torch.save files, metrics, images).
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace rla::util {

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part: the
/// bytes go to a temporary beside it (`<path>.tmp.<pid>.<n>`), are flushed and fsync'ed, and the
/// temporary is renamed over `path`. On any failure the temporary is removed and
/// std::runtime_error names `path` and the system's reason.
void write_file_atomic(const std::string& path, std::string_view bytes);

/// The same, with the content streamed by `write` into the temporary (no copy in memory). An
/// exception from `write` removes the temporary and propagates.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace rla::util
