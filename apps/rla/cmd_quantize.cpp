// `rla quantize`: post-training int8 quantization of a trained run (inference/quantized.h),
// calibrated on its training images; `rla eval --int8` and `rla infer --int8` run the result.
#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "commands.h"
#include "options.h"
#include "rla/engine/run_folder.h"
#include "rla/inference/load.h"
#include "rla/inference/quantized.h"

namespace rla::app {
namespace {
struct QuantizeConfig {
  std::string run, output, weights = "raw";
  int64_t calib = 512;
  int64_t batch_size = 64;
};
}  // namespace

Command add_quantize_command(CLI::App& root) {
  auto cfg = std::make_shared<QuantizeConfig>();
  auto* cmd = root.add_subcommand(
      "quantize", "int8 post-training quantization of a run (oneDNN/QNNPACK engine; docs/deploy.md)");
  cmd->add_option("run", cfg->run, "A run folder or rla checkpoint")->required();
  cmd->add_option("--calib", cfg->calib,
                  fmt::format("Calibration images, the first N of the run's training split (at least {})",
                              inference::kMinCalibrationImages))
      ->capture_default_str();
  cmd->add_option("--output,-o", cfg->output, "File to write (default: <run>/model.int8.pt)");
  cmd->add_option("--batch-size,-b", cfg->batch_size, "Calibration batch size")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--weights", cfg->weights,
                  "raw: the trained weights; ema: their moving average (runs trained with --ema-decay)")
      ->check(CLI::IsMember({"raw", "ema"}))
      ->capture_default_str();
  return {cmd, [cfg]() {
            if (cfg->calib < inference::kMinCalibrationImages)  // before loading anything
              throw std::invalid_argument(fmt::format("--calib {}: calibration needs at least {} images",
                                                      cfg->calib, inference::kMinCalibrationImages));
            // Writing into a run folder (the default) needs its lock: never while a run trains there.
            const auto out = cfg->output.empty() ? inference::default_int8_path(cfg->run) : cfg->output;
            auto folder = std::filesystem::path(out).parent_path();
            if (folder.empty()) folder = ".";
            std::optional<engine::RunFolderLock> lock;
            if (!engine::run_records(folder.string()).empty()) lock.emplace(folder.string());
            inference::LoadOptions load;
            load.weights = cfg->weights == "ema" ? inference::Weights::kAverage : inference::Weights::kRaw;
            load.execution = inference::Execution::kEager;  // quantization reads the float model
            load.with_data = true;
            const auto run = inference::load_model(cfg->run, load);
            data::LoaderOptions lo;
            lo.batch_size = cfg->batch_size;
            lo.shuffle = false;
            data::DataLoader loader(run.data->train, run.data->eval_transforms, lo);
            auto q = inference::quantize(*run.net, run.data->input_shape, loader, cfg->calib);
            q.save(out, run.model);
            const auto c = q.counts();
            fmt::print(
                "{}: {} quantized on {} ({} calibration images): {} int8 convolutions ({} with ReLU fused), "
                "{} int8 adds, {} int8 concatenations, {} int8 state updates, {} int8 pools, {} float ops "
                "-> {} ({:.2f} MB)\n",
                cfg->run, run.model, inference::QuantizedNetwork::engine(), q.calibration_images(),
                c.int8_convolutions, c.fused_relus, c.int8_adds, c.int8_concats, c.int8_state_updates,
                c.int8_pools, c.float_ops, out, static_cast<double>(std::filesystem::file_size(out)) / 1e6);
            return 0;
          }};
}

}  // namespace rla::app
