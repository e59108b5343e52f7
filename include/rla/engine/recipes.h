#pragma once
// Training presets ("recipes"): named sets of option values a configuration can start from
// (docs/training.md). A preset is data, listed here once; a program applies it to the options its
// user left unset (apps/rla: `rla train --recipe NAME`).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "rla/engine/train_config.h"

namespace rla::engine {

struct Recipe {
  std::string name;
  /// One line on where the preset comes from; fields it names are spelled as config.json keys.
  std::string summary;
  /// (config.json key, value as text: a number, true / false or a name), in the order shown to users.
  std::vector<std::pair<std::string, std::string>> values;
};

/// Every preset: "paper" (the official RLA-Net ImageNet recipe) and "modern" (torchvision's
/// ResNet-50 recipe of 2021).
const std::vector<Recipe>& train_recipes();
/// The preset named `name`. Throws util::FieldError("recipe") listing the names otherwise.
const Recipe& find_recipe(const std::string& name);
/// Sets `config`'s fields to the preset's values, except the fields `keep` returns true for (e.g.
/// the options a user gave), and records the preset's name in config.run.recipe.
void apply_recipe(const Recipe& recipe, TrainConfig& config,
                  const std::function<bool(const std::string& field)>& keep = {});

}  // namespace rla::engine
