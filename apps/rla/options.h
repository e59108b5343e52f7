#pragma once
// Option groups that several subcommands share, declared once: the dataset options and the
// model switches (k, aggregation, init, state input).
#include <CLI/CLI.hpp>

#include <string>

#include "rla/data/sources.h"
#include "rla/models/registry.h"

namespace rla::app {

/// Numeric checks whose message reads "must be positive, got 0" (CLI11's own PositiveNumber
/// prints the range up to the largest double, digit by digit).
extern const CLI::Validator kPositive;
extern const CLI::Validator kNonNegative;

/// --dataset --data-root --limit-train --limit-test --image-size.
void add_data_options(CLI::App* cmd, data::DataConfig& d);

/// The model switches as typed; empty / 0 means "the model's default".
struct ModelFlags {
  int64_t rla_channels = 0;
  std::string aggregation, zero_init_residual, state_input;
  /// Only the fields the user set (create_model fills in the rest and rejects what the model lacks).
  models::ModelConfig to_config() const;
};

/// --rla-channels --aggregation --zero-init-residual --state-input.
void add_model_options(CLI::App* cmd, ModelFlags& flags);

/// --int8 [--int8-file F]: run the int8 model `rla quantize` wrote instead of the float one.
struct Int8Flags {
  bool enabled = false;
  std::string file;
  /// Throws std::invalid_argument for --int8-file without --int8.
  void check() const;
  /// The int8 model for run folder / checkpoint `run`: --int8-file, else <run>/model.int8.pt.
  /// Throws std::invalid_argument, pointing to `rla quantize`, when there is no such file.
  std::string path(const std::string& run) const;
};
void add_int8_options(CLI::App* cmd, Int8Flags& flags);

}  // namespace rla::app
