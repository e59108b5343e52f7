#include "rla/engine/recipes.h"

#include <fmt/format.h>

#include "rla/util/field_error.h"

namespace rla::engine {

const std::vector<Recipe>& train_recipes() {
  static const std::vector<Recipe> all = {
      {"paper",
       "the official RLA-Net ImageNet recipe (docs/models.md)",
       {{"optimizer", "sgd"},
        {"lr", "0.1"},
        {"momentum", "0.9"},
        {"nesterov", "false"},
        {"weight_decay", "1e-4"},
        {"norm_weight_decay", "1e-4"},
        {"schedule", "step"},
        {"step_size", "30"},
        {"gamma", "0.1"},
        {"warmup_epochs", "0"},
        {"epochs", "120"},
        {"batch_size", "256"},
        {"label_smoothing", "0"},
        {"auto_augment", "none"},
        {"random_erasing", "0"},
        {"mixup_alpha", "0"},
        {"cutmix_alpha", "0"},
        {"ema_decay", "0"},
        {"grad_clip", "0"}}},
      {"modern",
       "torchvision's ResNet-50 recipe of 2021 (docs/training.md; its batch is 8 x 128, scale lr with "
       "batch_size)",
       {{"optimizer", "sgd"},
        {"lr", "0.5"},
        {"momentum", "0.9"},
        {"nesterov", "false"},
        {"weight_decay", "2e-5"},
        {"norm_weight_decay", "0"},
        {"schedule", "cosine"},
        {"warmup_epochs", "5"},
        {"epochs", "600"},
        {"batch_size", "1024"},
        {"label_smoothing", "0.1"},
        {"auto_augment", "trivialaugment"},
        {"random_erasing", "0.1"},
        {"mixup_alpha", "0.2"},
        {"cutmix_alpha", "1.0"},
        {"ema_decay", "0.99998"},
        {"ema_steps", "32"},
        {"grad_clip", "0"}}},
  };
  return all;
}

const Recipe& find_recipe(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& r : train_recipes()) {
    if (r.name == name) return r;
    names.push_back(r.name);
  }
  throw util::FieldError("recipe",
                         fmt::format("recipe: unknown '{}' (expected {})", name, fmt::join(names, " or ")));
}

void apply_recipe(const Recipe& recipe, TrainConfig& config,
                  const std::function<bool(const std::string&)>& keep) {
  nlohmann::json values = nlohmann::json::object();
  for (const auto& [field, text] : recipe.values) {
    if (keep && keep(field)) continue;
    // Numbers and true / false as JSON; a name (sgd, cosine, none...) as a string.
    auto value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    values[field] = value.is_discarded() || !value.is_primitive() ? nlohmann::json(text) : value;
  }
  update_train_config(config, values);
  config.run.recipe = recipe.name;
}

}  // namespace rla::engine
