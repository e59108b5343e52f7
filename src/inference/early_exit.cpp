#include "rla/inference/early_exit.h"

#include <fmt/format.h>

#include "rla/analysis/op_counter.h"

namespace rla::inference {
namespace {

int64_t macs_of(const analysis::OpCounter& c) {
  int64_t total = 0;
  for (const auto& r : c.records) total += r.macs;
  return total;
}

}  // namespace

ExitPlacement parse_exit_placement(const std::string& s) {
  if (s == "block") return ExitPlacement::kBlock;
  if (s == "stage") return ExitPlacement::kStage;
  throw std::invalid_argument("unknown exit placement '" + s + "' (expected block or stage)");
}

ExitHeadsImpl::ExitHeadsImpl(const models::NetworkImpl& net, int64_t num_classes, ExitPlacement placement) {
  const auto& blocks = net.blocks();
  TORCH_CHECK(blocks.size() >= 2, "exits need a backbone of at least two blocks");
  for (size_t i = 0; i + 1 < blocks.size(); ++i) {
    const bool stage_end = blocks[i + 1].stage != blocks[i].stage;
    if (placement == ExitPlacement::kBlock || stage_end) after_block_.push_back(i);
  }
  auto heads = register_module("heads", torch::nn::ModuleList());
  for (size_t j = 0; j < after_block_.size(); ++j) {
    const auto& b = blocks[after_block_[j]];
    auto head = std::make_shared<torch::nn::Module>();
    models::BatchNorm2d bn{nullptr};
    if (b.h_channels > 0) bn = head->register_module("bn", models::make_bn(b.h_channels));
    auto fc = head->register_module("fc", models::Linear(b.x_channels + b.h_channels, num_classes));
    heads->push_back(head);
    bns_.push_back(bn);
    fcs_.push_back(fc);
  }
}

torch::Tensor ExitHeadsImpl::forward(size_t j, const models::FlowState& s) {
  auto x = s.x;
  if (s.h.defined() && bns_.at(j)) x = torch::cat({x, torch::relu(bns_[j](s.h))}, 1);
  return fcs_.at(j)(models::global_avg_pool(x));
}

std::vector<torch::Tensor> forward_all_exits(models::NetworkImpl& net, ExitHeadsImpl& heads,
                                             const torch::Tensor& input) {
  std::vector<torch::Tensor> out;
  auto s = net.stem(input);
  size_t j = 0;
  for (size_t i = 0; i < net.blocks().size(); ++i) {
    net.run_block(i, s);
    if (j < heads.size() && heads.after_block()[j] == i) out.push_back(heads.forward(j++, s));
  }
  out.push_back(net.head(s));
  return out;
}

std::pair<torch::Tensor, torch::Tensor> exit_loss(models::NetworkImpl& net, ExitHeadsImpl& heads,
                                                  const torch::Tensor& input, const torch::Tensor& labels,
                                                  double weight) {
  auto all = forward_all_exits(net, heads, input);
  torch::Tensor exits = torch::zeros({}, all.back().options());
  for (size_t j = 0; j + 1 < all.size(); ++j)
    exits = exits + torch::nn::functional::cross_entropy(all[j], labels);
  exits = exits / static_cast<double>(std::max<size_t>(1, all.size() - 1));
  if (weight < 0) return {all.back(), exits};
  return {all.back(), torch::nn::functional::cross_entropy(all.back(), labels) + weight * exits};
}

DynamicResult dynamic_forward(models::NetworkImpl& net, ExitHeadsImpl& heads, const torch::Tensor& input,
                              double tau) {
  torch::NoGradGuard no_grad;
  const int64_t n = input.size(0);
  const auto exits = static_cast<int64_t>(heads.size());
  DynamicResult r;
  r.exit_index.assign(static_cast<size_t>(n), exits);
  auto s = net.stem(input);
  if (tau >= 1.0) {  // exits off: exactly the plain forward
    for (size_t i = 0; i < net.blocks().size(); ++i) net.run_block(i, s);
    r.logits = net.head(s);
    return r;
  }
  torch::Tensor out;
  auto active = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(input.device()));
  size_t j = 0;
  for (size_t i = 0; i < net.blocks().size() && active.numel() > 0; ++i) {
    net.run_block(i, s);
    if (j >= heads.size() || heads.after_block()[j] != i) continue;
    auto logits = heads.forward(j, s);
    if (!out.defined()) out = torch::empty({n, logits.size(1)}, logits.options());
    auto leave = std::get<0>(torch::softmax(logits, 1).max(1)) >= tau;
    auto leaving = leave.nonzero().squeeze(1);
    if (leaving.numel() > 0) {
      auto ids = active.index_select(0, leaving);
      out.index_copy_(0, ids, logits.index_select(0, leaving));
      auto ids_cpu = ids.cpu();
      for (int64_t k = 0; k < ids_cpu.numel(); ++k)
        r.exit_index[static_cast<size_t>(ids_cpu.data_ptr<int64_t>()[k])] = static_cast<int64_t>(j);
      auto stay = leave.logical_not().nonzero().squeeze(1);
      active = active.index_select(0, stay);
      s.x = s.x.index_select(0, stay);
      if (s.h.defined()) s.h = s.h.index_select(0, stay);
    }
    ++j;
  }
  if (active.numel() > 0) {
    // Samples still running finish the remaining blocks (already done above) and the head.
    auto logits = net.head(s);
    if (!out.defined()) out = torch::empty({n, logits.size(1)}, logits.options());
    out.index_copy_(0, active, logits);
  }
  r.logits = out;
  return r;
}

std::vector<int64_t> exit_macs(models::NetworkImpl& net, ExitHeadsImpl& heads,
                               const std::vector<int64_t>& input_chw) {
  TORCH_CHECK(input_chw.size() == 3, "exit_macs needs C,H,W");
  torch::NoGradGuard no_grad;
  net.eval();
  heads.eval();
  auto param = net.parameters().front();
  auto input = torch::zeros({1, input_chw[0], input_chw[1], input_chw[2]}, param.options());
  std::vector<int64_t> cost;
  int64_t running = 0;
  models::FlowState s;
  {
    analysis::OpCounter c;
    s = net.stem(input);
    running += macs_of(c);
  }
  size_t j = 0;
  for (size_t i = 0; i < net.blocks().size(); ++i) {
    {
      analysis::OpCounter c;
      net.run_block(i, s);
      running += macs_of(c);
    }
    if (j < heads.size() && heads.after_block()[j] == i) {
      analysis::OpCounter c;
      heads.forward(j++, s);
      running += macs_of(c);
      cost.push_back(running);
    }
  }
  analysis::OpCounter c;
  net.head(s);
  cost.push_back(running + macs_of(c));
  return cost;
}

}  // namespace rla::inference
