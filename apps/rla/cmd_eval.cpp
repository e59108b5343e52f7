// `rla eval`: evaluates a checkpoint on a dataset's test split: top-1, top-5, per-class
// accuracy and the confusion matrix.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "options.h"
#include "rla/data/sources.h"
#include "rla/engine/evaluate.h"
#include "rla/engine/train_config.h"
#include "rla/inference/load.h"
#include "rla/inference/quantized.h"

namespace rla::app {

namespace {
struct EvalConfig {
  std::string checkpoint;
  data::DataConfig data;
  int64_t batch_size = 256;
  bool json = false;
  bool fast = false;
  bool eager = false;
  Int8Flags int8;
  std::string weights = "raw";
  std::string device = "cpu";
};
}  // namespace

Command add_eval_command(CLI::App& root) {
  auto cfg = std::make_shared<EvalConfig>();
  auto* cmd =
      root.add_subcommand("eval", "Evaluate a checkpoint: top-1/top-5, per-class accuracy, confusion matrix");
  cmd->add_option("checkpoint", cfg->checkpoint,
                  "Checkpoint (e.g. runs/rla_resnet20-fashion-mnist/best.ckpt)")
      ->required();
  add_data_options(cmd, cfg->data);
  cmd->add_option("--batch-size,-b", cfg->batch_size, "Batch size")->capture_default_str();
  cmd->add_flag("--json", cfg->json, "Print one JSON object");
  cmd->add_option("--weights", cfg->weights,
                  "raw: the trained weights; ema: their moving average (runs trained with --ema-decay)")
      ->check(CLI::IsMember({"raw", "ema"}))
      ->capture_default_str();
  cmd->add_option("--device", cfg->device, "cpu, cuda or cuda:N (another device than the CPU runs eagerly)")
      ->capture_default_str();
  cmd->add_flag("--eager", cfg->eager,
                "Run the eager model instead of the prepared fast path (the default on the CPU: BatchNorm "
                "folded, oneDNN; logits within 1e-4 of the eager model's)");
  cmd->add_flag("--fast", cfg->fast, "The fast path (the default; kept for old scripts)");
  add_int8_options(cmd, cfg->int8);
  return {cmd, [cfg, cmd]() {
            // The checkpoint records the model and data it was trained with; flags given here override.
            const auto device = engine::parse_device(cfg->device);
            if (cfg->fast && cfg->eager) throw std::invalid_argument("--fast and --eager: choose one");
            if (cfg->fast && cfg->int8.enabled) throw std::invalid_argument("--fast and --int8: choose one");
            if (cfg->fast && !device.is_cpu())
              throw std::invalid_argument("--fast runs on the CPU (leave out --device)");
            if (cfg->int8.enabled && !device.is_cpu())
              throw std::invalid_argument("--int8 runs on the CPU (leave out --device)");
            cfg->int8.check();
            inference::LoadOptions lo;
            if (cmd->count("--dataset")) lo.dataset = cfg->data.dataset;
            if (cmd->count("--data-root")) lo.data_root = cfg->data.root;
            lo.limit_test = cfg->data.limit_test;
            if (cmd->count("--image-size")) lo.image_size = cfg->data.image_size;
            lo.weights = cfg->weights == "ema" ? inference::Weights::kAverage : inference::Weights::kRaw;
            lo.with_data = true;
            lo.device = device;
            const bool eager = cfg->eager || cfg->int8.enabled || !device.is_cpu();
            lo.execution = eager ? inference::Execution::kEager : inference::Execution::kFast;
            const auto run = inference::load_model(cfg->checkpoint, lo);
            const auto& bundle = *run.data;
            const std::string& model_name = run.model;
            data::LoaderOptions loader_options;
            loader_options.batch_size = cfg->batch_size;
            loader_options.shuffle = false;
            data::DataLoader loader(bundle.test, bundle.eval_transforms, loader_options);
            engine::ClassificationMeter meter(bundle.test->num_classes());
            if (cfg->int8.enabled) {
              auto q =
                  inference::QuantizedNetwork::load(cfg->int8.path(cfg->checkpoint), *run.net, model_name);
              meter = engine::evaluate([&q](const torch::Tensor& x) { return q.forward(x); }, loader,
                                       bundle.test->num_classes(), !cfg->json);
            } else {
              meter = engine::evaluate([&run](const torch::Tensor& x) { return run.forward(x); }, loader,
                                       bundle.test->num_classes(), !cfg->json);
            }
            const auto names = bundle.test->class_names();
            if (cfg->json) {
              auto j = engine::to_json(meter, names);
              j["model"] = model_name;
              j["checkpoint"] = cfg->checkpoint;
              j["fast"] = run.is_fast();
              j["int8"] = cfg->int8.enabled;
              j["weights"] = cfg->weights;
              j["dataset"] = bundle.test->description();
              std::cout << j.dump(2) << "\n";
              return 0;
            }
            fmt::print("{} on {}: top-1 {:.2f}%  top-5 {:.2f}%  loss {:.4f}  ({} images)\n", model_name,
                       bundle.test->description(), meter.top1(), meter.top5(), meter.loss(), meter.count());
            const auto acc = meter.per_class_accuracy();
            fmt::print("\nper-class top-1:\n");
            for (size_t i = 0; i < acc.size(); ++i)
              fmt::print("  {:>3} {:<14} {:6.2f}%\n", i, names[i], acc[i]);
            const int64_t k = meter.num_classes();
            if (k <= 20) {
              fmt::print("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
              for (int64_t p = 0; p < k; ++p) fmt::print("{:>6}", p);
              fmt::print("\n");
              for (int64_t t = 0; t < k; ++t) {
                fmt::print("  {:>3}", t);
                for (int64_t p = 0; p < k; ++p)
                  fmt::print("{:>6}", meter.confusion()[static_cast<size_t>(t * k + p)]);
                fmt::print("\n");
              }
            }
            return 0;
          }};
}

}  // namespace rla::app
