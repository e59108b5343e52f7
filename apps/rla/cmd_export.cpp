// `rla export`: writes a trained model (a run, an rla checkpoint or a state dict) in a format
// other programs load: TorchScript (Python's torch.jit.load, LibTorch's torch::jit::load) or ONNX
// (ONNX Runtime, OpenCV's dnn, TensorRT, OpenVINO).
#include <fmt/format.h>

#include "commands.h"
#include "options.h"
#include "rla/deploy/export.h"
#include "rla/inference/load.h"
#include "rla/models/backbone.h"
#include "rla/util/parse.h"

namespace rla::app {
namespace {
struct ExportConfig {
  std::string weights, model, format = "torchscript", output, input;
  bool keep_bn = false;
  bool features = false, with_state = false;
  int64_t batch = 0;
  std::string weights_kind = "raw";
  ModelFlags flags;
};
}  // namespace

Command add_export_command(CLI::App& root) {
  auto cfg = std::make_shared<ExportConfig>();
  auto* cmd = root.add_subcommand("export", "Write a model as TorchScript or ONNX (docs/deploy.md)");
  cmd->add_option("weights", cfg->weights,
                  "A run folder or rla checkpoint (the model comes from it), or a torch.save state dict "
                  "(then name --model)")
      ->required();
  cmd->add_option("--format,-f", cfg->format,
                  "torchscript: for torch.jit.load (Python, LibTorch); onnx: opset 13, dynamic batch, input "
                  "'input' [N, C, H, W], output 'logits' [N, classes]")
      ->capture_default_str();
  cmd->add_option("--output,-o", cfg->output, "File to write")->required();
  cmd->add_option("--model,-m", cfg->model, "Model name; needed for a plain state dict");
  add_model_options(cmd, cfg->flags);
  cmd->add_option("--input", cfg->input,
                  "C,H,W of the example the trace runs on (default: the run's input, else the model's)");
  cmd->add_flag("--keep-bn", cfg->keep_bn, "Keep the BatchNorms (default: folded into the convolutions)");
  cmd->add_option("--batch", cfg->batch,
                  "ONNX: a fixed batch size in the file (default: free; OpenCV 4.6 needs one for SE models)")
      ->check(kPositive);
  cmd->add_flag(
      "--features", cfg->features,
      "Export the backbone: one output per stage (the main path after its last block; ONNX names "
      "C2..C5 for ImageNet ResNets, by stride), for detection / segmentation heads (ResNet family)");
  cmd->add_flag("--with-state", cfg->with_state, "With --features: also the final RLA state h (output 'h')");
  cmd->add_option("--weights", cfg->weights_kind,
                  "raw: the trained weights; ema: their moving average (runs trained with --ema-decay)")
      ->check(CLI::IsMember({"raw", "ema"}))
      ->capture_default_str();
  return {
      cmd, [cfg]() {
        if (cfg->format != "torchscript" && cfg->format != "onnx")
          throw std::invalid_argument(
              fmt::format("--format: '{}' is not a format (torchscript, onnx)", cfg->format));
        if (cfg->batch > 0 && cfg->format != "onnx")
          throw std::invalid_argument("--batch fixes the batch of an ONNX file (TorchScript keeps it free)");
        if (cfg->with_state && !cfg->features) throw std::invalid_argument("--with-state needs --features");
        inference::LoadOptions lo;
        lo.model = cfg->model;
        lo.config = cfg->flags.to_config();
        lo.weights = cfg->weights_kind == "ema" ? inference::Weights::kAverage : inference::Weights::kRaw;
        lo.execution = inference::Execution::kEager;  // the export traces the model itself
        auto m = inference::load_model(cfg->weights, lo);
        deploy::ExportOptions o;
        o.fold_batchnorm = !cfg->keep_bn;
        o.onnx_batch = cfg->batch;
        o.features = cfg->features;
        o.with_state = cfg->with_state;
        if (cfg->features && !models::is_resnet_family(*m.net))
          throw std::invalid_argument(fmt::format("--features: {} is not a ResNet-family model", m.model));
        if (cfg->with_state && m.net->state_channels() == 0)
          throw std::invalid_argument(fmt::format("--with-state: {} has no RLA state", m.model));
        if (!cfg->input.empty()) {
          o.input_shape = util::parse_int_list(cfg->input, 3, "--input");
        } else if (m.input_shape.size() == 3) {
          o.input_shape = m.input_shape;
        } else {
          o.input_shape = models::find_model(m.model).default_input();
          o.input_shape[0] = m.config.in_channels.value_or(o.input_shape[0]);
        }
        if (cfg->format == "onnx")
          deploy::export_onnx(*m.net, cfg->output, o);
        else
          deploy::export_torchscript(*m.net, cfg->output, o);
        fmt::print("{}: {}{} as {} (input [N, {}], BatchNorm {}) -> {}\n", cfg->weights, m.model,
                   cfg->features ? " backbone" : "", cfg->format == "onnx" ? "ONNX" : "TorchScript",
                   fmt::join(o.input_shape, ", "), o.fold_batchnorm ? "folded" : "kept", cfg->output);
        return 0;
      }};
}

}  // namespace rla::app
