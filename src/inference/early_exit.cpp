#include "rla/inference/early_exit.h"

#include "rla/models/op_counter.h"

namespace rla::inference {
namespace {

int64_t macs_of(const models::OpCounter& c) {
  int64_t total = 0;
  for (const auto& r : c.records) total += r.macs;
  return total;
}

}  // namespace

DynamicResult dynamic_forward(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                              const torch::Tensor& input, double tau) {
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

std::vector<int64_t> exit_macs(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
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
    models::OpCounter c;
    s = net.stem(input);
    running += macs_of(c);
  }
  size_t j = 0;
  for (size_t i = 0; i < net.blocks().size(); ++i) {
    {
      models::OpCounter c;
      net.run_block(i, s);
      running += macs_of(c);
    }
    if (j < heads.size() && heads.after_block()[j] == i) {
      models::OpCounter c;
      heads.forward(j++, s);
      running += macs_of(c);
      cost.push_back(running);
    }
  }
  models::OpCounter c;
  net.head(s);
  cost.push_back(running + macs_of(c));
  return cost;
}

}  // namespace rla::inference
