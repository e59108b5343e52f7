#pragma once
// Process-wide switches read from the environment, for A/B runs of optimised paths.
namespace rla::util {

/// Whether the switch `name` is on: on unless the environment sets it to "0". Read on each call;
/// callers that sit on a hot path keep the answer in a static.
bool env_switch_on(const char* name);

}  // namespace rla::util
