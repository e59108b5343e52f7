// The fused RLA state update of training (models/state_update.h) against the separate
// operations it replaces, bn(h + c).tanh() with ATen's batch norm: the output, the gradients of
// h, c, gamma and beta (the reference gradient is autograd's through ATen's kernels), and the
// running statistics; then whole networks, one training step each way, on the same weights.
#include <gtest/gtest.h>

#include <deque>
#include <unordered_set>

#include "rla/models/network.h"
#include "rla/models/registry.h"
#include "rla/models/state_update.h"

namespace {

using namespace rla;

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

// Restores the process-wide switch when a test ends.
struct FusionSwitch {
  bool before = models::state_update_fusion();
  ~FusionSwitch() { models::set_state_update_fusion(before); }
};

models::BatchNorm2d random_batchnorm(int64_t k) {
  auto bn = models::BatchNorm2d(models::BatchNorm2dImpl(k));
  torch::NoGradGuard no_grad;
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.normal_(0, 0.3);
  bn->running_mean.normal_(0, 0.2);
  bn->running_var.uniform_(0.5, 2.0);
  return bn;
}

// Copies every parameter and buffer of `from` into `to` (the same structure).
void copy_values(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  const auto a = models::state_dict(from), b = models::state_dict(to);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) b[i].second.copy_(a[i].second);
}

bool graph_has(const torch::Tensor& out, const std::string& name) {
  std::deque<torch::autograd::Node*> todo{out.grad_fn().get()};
  std::unordered_set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    auto* node = todo.front();
    todo.pop_front();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find(name) != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) todo.push_back(edge.function.get());
  }
  return false;
}

// One case: shape [N, k, H, W], `offset` added to h (a mean far from zero tests the variance's
// cancellation guard).
void check_against_separate_operations(std::vector<int64_t> shape, double offset) {
  SCOPED_TRACE(::testing::Message() << "shape " << torch::IntArrayRef(shape) << ", offset " << offset);
  torch::manual_seed(11);
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto h0 = (torch::randn(shape) * 0.7 + offset).contiguous(cl);
  const auto c0 = torch::randn(shape).contiguous(cl);
  const auto weights = torch::randn(shape);  // the loss is sum(out * weights)
  auto fused_bn = random_batchnorm(shape[1]);
  auto plain_bn = models::BatchNorm2d(models::BatchNorm2dImpl(shape[1]));
  copy_values(*fused_bn, *plain_bn);

  auto h1 = h0.clone().requires_grad_(), c1 = c0.clone().requires_grad_();
  ASSERT_TRUE(models::state_update_fusable(h1, c1, *fused_bn));
  const auto out1 = models::state_update_fused(h1, c1, *fused_bn);
  EXPECT_TRUE(graph_has(out1, "StateUpdate"));
  EXPECT_TRUE(out1.is_contiguous(cl));
  (out1 * weights).sum().backward();

  auto h2 = h0.clone().requires_grad_(), c2 = c0.clone().requires_grad_();
  const auto out2 = plain_bn(h2 + c2).tanh();
  (out2 * weights).sum().backward();

  EXPECT_LT(relative_error(out1, out2), 2e-6);
  EXPECT_LT(relative_error(h1.grad(), h2.grad()), 1e-5);
  EXPECT_LT(relative_error(c1.grad(), c2.grad()), 1e-5);
  EXPECT_LT(relative_error(fused_bn->weight.grad(), plain_bn->weight.grad()), 1e-5);
  EXPECT_LT(relative_error(fused_bn->bias.grad(), plain_bn->bias.grad()), 1e-5);
  EXPECT_LT(relative_error(fused_bn->running_mean, plain_bn->running_mean), 1e-6);
  EXPECT_LT(relative_error(fused_bn->running_var, plain_bn->running_var), 1e-6);
  EXPECT_EQ(fused_bn->num_batches_tracked.item<int64_t>(), plain_bn->num_batches_tracked.item<int64_t>());
}

TEST(StateUpdateTraining, FusedNodeEqualsTheSeparateOperations) {
  check_against_separate_operations({8, 12, 16, 16}, 0.0);  // CIFAR's k = 12, 2048 rows: two blocks
  check_against_separate_operations({3, 32, 7, 5}, 0.0);    // ImageNet's k = 32, a partial block
  check_against_separate_operations({2, 12, 9, 9}, 6.0);    // mean far from zero
}

TEST(StateUpdateTraining, AppliesOnlyWhereItIsExact) {
  FusionSwitch restore;
  auto bn = random_batchnorm(12);
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto h = torch::randn({2, 12, 4, 4}).contiguous(cl);
  EXPECT_TRUE(models::state_update_fusable(h, h.clone(), *bn));
  EXPECT_FALSE(models::state_update_fusable(h.contiguous(), h.contiguous(), *bn));  // NCHW
  EXPECT_FALSE(models::state_update_fusable(h.to(torch::kDouble), h.to(torch::kDouble), *bn));
  EXPECT_FALSE(models::state_update_fusable(h, torch::randn({2, 12, 2, 2}).contiguous(cl), *bn));
  bn->eval();  // running statistics: the inference form handles it
  EXPECT_FALSE(models::state_update_fusable(h, h.clone(), *bn));
  bn->train();
  models::set_state_update_fusion(false);
  EXPECT_FALSE(models::state_update_fusable(h, h.clone(), *bn));
}

// Every parameter's gradient (or every floating-point buffer) of `net`, flattened into one vector.
torch::Tensor flat(const models::Network& net, bool gradients) {
  std::vector<torch::Tensor> parts;
  if (gradients) {
    for (const auto& p : net->parameters())
      if (p.grad().defined()) parts.push_back(p.grad().flatten());
  } else {
    for (const auto& b : net->buffers())
      if (b.is_floating_point()) parts.push_back(b.flatten());
  }
  return torch::cat(parts);
}

double norm_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / b.norm().item<double>();
}

// One training step of a network three ways from the same weights and input: fused and
// channels-last, separate operations and channels-last, separate operations and NCHW. The last
// two differ only by float rounding (other kernels, other summation orders), which a deep
// network amplifies through its batch statistics; the fused step must stay within that spread
// of the separate operations (or 1e-5, whichever is larger), in the loss, every gradient and every
// BatchNorm statistic. The fused node is in the first graph and in no other.
void check_network(const std::string& name, int64_t size) {
  SCOPED_TRACE(name);
  FusionSwitch restore;
  torch::manual_seed(3);
  auto fused = models::create_model(name, {});
  auto plain = models::create_model(name, {});
  auto nchw = models::create_model(name, {});
  copy_values(*fused, *plain);
  copy_values(*fused, *nchw);
  models::to_channels_last(*fused);
  models::to_channels_last(*plain);
  const auto x = torch::randn({4, 3, size, size});
  const auto target = torch::randint(0, 10, {4});
  auto step = [&](const models::Network& net, bool fusion, bool channels_last) {
    models::set_state_update_fusion(fusion);
    net->train();
    torch::manual_seed(5);  // the same dropout mask (MobileNetV2's classifier) each way
    auto logits = net->forward(channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x);
    EXPECT_EQ(graph_has(logits, "StateUpdate"), fusion);
    auto loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, 10), target);
    loss.backward();
    return loss.item<double>();
  };
  const double loss_fused = step(fused, true, true), loss_plain = step(plain, false, true),
               loss_nchw = step(nchw, false, false);
  EXPECT_LE(std::abs(loss_fused - loss_plain), std::max(4 * std::abs(loss_nchw - loss_plain), 1e-5));
  for (const bool gradients : {true, false}) {
    SCOPED_TRACE(gradients ? "gradients" : "BatchNorm statistics");
    const auto reference = flat(plain, gradients);
    const double spread = norm_error(flat(nchw, gradients), reference);
    const double error = norm_error(flat(fused, gradients), reference);
    EXPECT_LE(error, std::max(4 * spread, 1e-5)) << "rounding spread of the separate operations " << spread;
    EXPECT_LT(spread, 5e-2) << "too noisy a case to tell anything (a BatchNorm over too few values)";
  }
}

TEST(StateUpdateTraining, NetworksTrainTheSameWithAndWithoutTheFusedNode) {
  check_network("rla_resnet20", 32);
  check_network("rla_resnet29_s", 32);
  check_network("rla_densenet40", 32);
  check_network("dsrla_mobilenetv2_k12", 64);
}

}  // namespace
