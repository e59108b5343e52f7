#pragma once
// The one way to load a model. `load_model` takes a run folder, an rla checkpoint or a
// torch.save state dict (with the model's name) and returns a ModelBundle: the network with its
// weights, ready to run (the prepared fast path by default, the eager model on request), with
// what its inputs look like (shape, normalisation, class names), its configuration and,
// on request, its exit heads and the data it was trained on. Every command of the CLI and the
// library example load through it.
//
//   auto m = rla::inference::load_model("runs/main");           // fast path, raw weights
//   auto logits = m.forward(rla::io::load_image_input("cat.png", m.input));
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rla/data/sources.h"
#include "rla/engine/run.h"
#include "rla/inference/fast_inference.h"
#include "rla/io/model_io.h"
#include "rla/models/exit_heads.h"
#include "rla/models/registry.h"

namespace rla::inference {

/// Which weights of a run: the trained ones, or their exponential moving average (runs trained
/// with TrainConfig::regularization.ema_decay > 0).
enum class Weights { kRaw, kAverage };
/// How `ModelBundle::forward` runs: the prepared inference copy (FastNetwork: BatchNorm folded,
/// oneDNN; CPU only) or the eager model itself.
enum class Execution { kFast, kEager };

struct LoadOptions {
  /// Registered model name. Needed for a state dict; for a run, empty or equal to the stored one.
  std::string model;
  /// State dict: the model's options (k, aggregation, classes, ...). Run: every set field must
  /// equal the stored configuration.
  models::ModelConfig config;
  Weights weights = Weights::kRaw;
  Execution execution = Execution::kFast;
  /// Fast path: keep freed memory in the process's heap (util::keep_freed_memory; the
  /// environment's RLA_SYSTEM_MALLOC still wins). With glibc's default, every activation over its
  /// mmap threshold is mapped and page-faulted in again on each forward: rla_resnet20 at batch
  /// 32 ran 11-25 ms per forward instead of 10-16 ms, resnet50 1100-1230 ms instead of 740-870
  /// (docs/performance.md, round seven). The setting is process-wide and raises the resident
  /// size to its peak; set false to leave the heap as the program has it.
  bool keep_heap = true;
  /// Where the eager model lives. The fast path needs the CPU.
  torch::Device device = torch::kCPU;
  /// State dict: every key of the model must be in the file with its shape (else only what
  /// matches is loaded and ModelBundle::load_report says what did not).
  bool strict = true;
  /// The run's exit heads (ModelBundle::heads). Exit heads run eagerly: execution must be eager.
  bool with_exits = false;
  /// Open the run's dataset (ModelBundle::data: its test and validation splits and evaluation
  /// transforms; no training augmentation). The fields below replace the stored ones when set.
  bool with_data = false;
  std::optional<std::string> dataset, data_root;
  size_t limit_test = 0;  ///< 0: the stored value
  /// Image folders: the crop size the images are evaluated at (0: the stored value).
  int64_t image_size = 0;
};

/// A loaded model and everything known about its inputs.
struct ModelBundle {
  std::string source;          ///< what was asked for
  std::string checkpoint;      ///< the file read (a run folder's last.ckpt)
  std::string model;           ///< registered name
  models::ModelConfig config;  ///< resolved (every field the model has, set)
  /// The training configuration, when the weights come from an rla run or checkpoint.
  std::optional<engine::TrainConfig> run;
  models::Network net;                ///< the eager model, weights loaded, eval mode, on LoadOptions::device
  models::ExitHeads heads{nullptr};   ///< with_exits: the run's exit heads, eval mode
  std::shared_ptr<FastNetwork> fast;  ///< Execution::kFast: the prepared copy of `net`
  io::ImageInput input;               ///< how an image file becomes this model's input
  std::vector<int64_t> input_shape;   ///< [C, H, W] the model was trained on; empty when unknown
  std::vector<std::string> class_names;  ///< empty when unknown (a bare state dict)
  std::string dataset;                   ///< what it was trained on; empty when unknown
  std::optional<data::DataBundle> data;  ///< with_data
  std::string load_report;               ///< non-strict loads: what did not match; else empty

  /// Logits [N, classes] for inputs [N, C, H, W] (no autograd): through `fast` when prepared,
  /// else `net`. Inputs move to the model's device.
  torch::Tensor forward(const torch::Tensor& input) const;
  bool is_fast() const { return fast != nullptr; }
};

/// Loads `source`: a run folder (its last.ckpt), an rla checkpoint, or any torch.save file
/// holding a state dict (an official checkpoint too) for registered model `options.model`.
/// Throws std::invalid_argument / std::runtime_error naming the file and what does not fit.
ModelBundle load_model(const std::string& source, const LoadOptions& options = {});

}  // namespace rla::inference
