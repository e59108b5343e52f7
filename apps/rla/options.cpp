#include "options.h"

#include <filesystem>

#include "rla/inference/quantized.h"

namespace rla::app {

namespace {

CLI::Validator number_at_least(double low, bool strict, const std::string& words) {
  return CLI::Validator(
      [low, strict, words](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "'" + text + "' is not a number";
        if (strict ? v > low : v >= low) return {};
        return "must be " + words + ", got " + text;
      },
      words == "positive" ? "POSITIVE" : "NONNEGATIVE");
}

}  // namespace

const CLI::Validator kPositive = number_at_least(0, true, "positive");
const CLI::Validator kNonNegative = number_at_least(0, false, ">= 0");

void add_data_options(CLI::App* cmd, data::DataConfig& d) {
  cmd->add_option("--dataset", d.dataset, "fashion-mnist | mnist | cifar10 | cifar100 | folder | synthetic")
      ->capture_default_str();
  cmd->add_option("--data-root", d.root, "Dataset folder (default: the packaged location)");
  cmd->add_option("--limit-train", d.limit_train, "Use only the first N training images (0 = all)");
  cmd->add_option("--limit-test", d.limit_test, "Use only the first N test images (0 = all)");
  cmd->add_option("--image-size", d.image_size, "Crop size for image folders")
      ->check(kPositive)
      ->capture_default_str();
}

void add_model_options(CLI::App* cmd, ModelFlags& f) {
  cmd->add_option("--rla-channels", f.rla_channels, "k, the RLA state channels (default: the model's)")
      ->check(kPositive);
  cmd->add_option("--aggregation", f.aggregation, "RLA aggregation: rla | sum | concat (default rla)")
      ->check(CLI::IsMember({"rla", "sum", "concat"}));
  cmd->add_option("--zero-init-residual", f.zero_init_residual,
                  "ResNet family: start every residual branch's last BN at weight 0: on | off "
                  "(default: the model's, see `rla summary`)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--state-input", f.state_input,
                  "RLA ResNets: what the cell reads, the residual branch or the block output: "
                  "branch | output (default: the model's)")
      ->check(CLI::IsMember({"branch", "output"}));
}

models::ModelConfig ModelFlags::to_config() const {
  models::ModelConfig c;
  if (rla_channels > 0) c.rla_channels = rla_channels;
  if (!aggregation.empty()) c.aggregation = models::parse_aggregation(aggregation);
  if (!zero_init_residual.empty()) c.zero_init_residual = zero_init_residual == "on";
  if (!state_input.empty()) c.state_input = models::parse_state_input(state_input);
  return c;
}

void add_int8_options(CLI::App* cmd, Int8Flags& f) {
  cmd->add_flag("--int8", f.enabled, "Run the int8 model `rla quantize` wrote (<run>/model.int8.pt)");
  cmd->add_option("--int8-file", f.file, "The int8 model to run with --int8 (default: <run>/model.int8.pt)");
}

void Int8Flags::check() const {
  if (!file.empty() && !enabled) throw std::invalid_argument("--int8-file needs --int8");
}

std::string Int8Flags::path(const std::string& run) const {
  const auto p = file.empty() ? inference::default_int8_path(run) : file;
  if (!std::filesystem::is_regular_file(p))
    throw std::invalid_argument(p + ": no int8 model there (write one with `rla quantize`)");
  return p;
}

}  // namespace rla::app
