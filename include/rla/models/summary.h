#pragma once
// Per-layer and total parameter / operation counts of a model (docs/models.md, "Counting"), as `rla summary`
// prints them. Two conventions: MACs (conv and linear multiply-accumulates) and thop-compatible
// ops (conv + BN 2*numel + linear + avg-pools, what the paper's table used).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "rla/models/network.h"

namespace rla::models {

struct LayerRow {
  std::string name;  ///< state_dict-style module name, or a label for functional ops
  std::string kind;
  std::vector<int64_t> out_shape;
  int64_t params = 0;  ///< parameters first seen at this call (shared layers count once)
  int64_t macs = 0;
  int64_t thop_ops = 0;
};

struct ModelSummary {
  std::vector<int64_t> input;  ///< [N, C, H, W] used for the count (N = 1)
  std::vector<int64_t> output;
  std::vector<LayerRow> rows;
  int64_t params = 0;  ///< unique scalar parameters
  int64_t macs = 0;
  int64_t thop_ops = 0;
  int64_t state_dict_entries = 0;
};

/// Runs one eval-mode forward of a [1, C, H, W] zero input under an OpCounter.
/// input_chw: {C, H, W}. The model is left in eval mode.
ModelSummary summarize(models::NetworkImpl& net, const std::vector<int64_t>& input_chw);

/// The table `rla summary` prints (rows, then totals in both unit systems).
std::string format_summary(const std::string& model_name, const ModelSummary& s, bool per_layer = true);
nlohmann::json summary_to_json(const std::string& model_name, const ModelSummary& s);

/// 25870696 -> "25,870,696".
std::string with_commas(int64_t v);

}  // namespace rla::models
