// Early exit: tau = 1 is the plain forward, tau = 0 leaves at the first exit with that prefix's
// MACs, and batched dynamic inference equals one-by-one.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "rla/inference/early_exit.h"
#include "rla/models/op_counter.h"
#include "rla/models/registry.h"

namespace {

using namespace rla;

struct Fixture {
  models::Network net;
  models::ExitHeads heads{nullptr};
};

Fixture make(const std::string& name, models::ExitPlacement placement) {
  torch::manual_seed(3);
  models::ModelConfig cfg;
  cfg.in_channels = 1;
  Fixture f;
  f.net = models::create_model(name, cfg);
  f.heads = models::ExitHeads(*f.net, 10, placement);
  // Random BN statistics so that eval mode differs from identity.
  torch::NoGradGuard ng;
  for (auto& m : f.net->modules(false))
    if (auto* bn = m->as<models::BatchNorm2dImpl>()) {
      bn->running_mean.normal_(0, 0.1);
      bn->running_var.uniform_(0.5, 1.5);
      bn->weight.uniform_(0.5, 1.5);
    }
  f.net->eval();
  f.heads->eval();
  return f;
}

TEST(EarlyExit, PlacementCountsExits) {
  auto a = make("rla_resnet20", models::ExitPlacement::kBlock);
  EXPECT_EQ(a.heads->size(), 8u);  // 9 blocks, exits after the first 8
  auto b = make("rla_resnet20", models::ExitPlacement::kStage);
  EXPECT_EQ(b.heads->after_block(), (std::vector<size_t>{2, 5}));
  // Exit heads live outside the backbone's state_dict names.
  for (const auto& [name, t] : models::state_dict(*a.heads)) EXPECT_EQ(name.rfind("heads.", 0), 0u) << name;
}

TEST(EarlyExit, TauOneIsThePlainForwardExactly) {
  for (const std::string name : {"rla_resnet20", "resnet20"}) {
    auto f = make(name, models::ExitPlacement::kBlock);
    auto x = torch::randn({6, 1, 28, 28});
    auto r = inference::dynamic_forward(*f.net, *f.heads, x, 1.0);
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(r.logits, f.net->forward(x))) << name;
    for (auto e : r.exit_index) EXPECT_EQ(e, static_cast<int64_t>(f.heads->size()));
  }
}

TEST(EarlyExit, TauZeroLeavesAtTheFirstExitWithItsPrefixMacs) {
  auto f = make("rla_resnet20", models::ExitPlacement::kBlock);
  auto x = torch::randn({5, 1, 28, 28});
  auto r = inference::dynamic_forward(*f.net, *f.heads, x, 0.0);
  for (auto e : r.exit_index) EXPECT_EQ(e, 0);
  torch::NoGradGuard ng;
  auto s = f.net->stem(x);
  f.net->run_block(0, s);
  EXPECT_TRUE(torch::allclose(r.logits, f.heads->forward(0, s)));

  auto macs = inference::exit_macs(*f.net, *f.heads, {1, 28, 28});
  ASSERT_EQ(macs.size(), f.heads->size() + 1);
  // Independent count of stem + block 0 + exit 0 on one image.
  models::OpCounter counter;
  auto one = f.net->stem(torch::zeros({1, 1, 28, 28}));
  f.net->run_block(0, one);
  f.heads->forward(0, one);
  int64_t prefix = 0;
  for (const auto& rec : counter.records) prefix += rec.macs;
  EXPECT_EQ(macs[0], prefix);
  for (size_t j = 1; j < macs.size(); ++j) EXPECT_GT(macs[j], macs[j - 1]);
}

TEST(EarlyExit, BatchedEqualsOneByOne) {
  for (const std::string name : {"rla_resnet20", "resnet20", "rla_densenet40"}) {
    auto f = make(name, models::ExitPlacement::kBlock);
    auto x = torch::randn({12, 1, 28, 28});
    // A threshold that splits the batch: the median confidence at the first exit.
    double tau = 0;
    {
      torch::NoGradGuard ng;
      auto conf = std::get<0>(torch::softmax(models::forward_all_exits(*f.net, *f.heads, x)[0], 1).max(1));
      tau = conf.median().item<double>();
    }
    auto all = inference::dynamic_forward(*f.net, *f.heads, x, tau);
    std::set<int64_t> used(all.exit_index.begin(), all.exit_index.end());
    for (int64_t i = 0; i < 12; ++i) {
      auto one = inference::dynamic_forward(*f.net, *f.heads, x.slice(0, i, i + 1), tau);
      EXPECT_EQ(one.exit_index[0], all.exit_index[static_cast<size_t>(i)]) << name << " sample " << i;
      EXPECT_TRUE(torch::allclose(one.logits[0], all.logits[i], 1e-4, 1e-5)) << name << " sample " << i;
      EXPECT_EQ(one.logits[0].argmax().item<int64_t>(), all.logits[i].argmax().item<int64_t>());
    }
    EXPECT_GE(used.size(), 2u) << name << ": the threshold should split the batch";
  }
}

TEST(EarlyExit, JointLossTrainsHeadsAndBackbone) {
  auto f = make("rla_resnet20", models::ExitPlacement::kStage);
  f.net->train();
  f.heads->train();
  auto x = torch::randn({4, 1, 28, 28});
  auto y = torch::randint(10, {4}, torch::kLong);
  auto [logits, loss] = models::exit_loss(*f.net, *f.heads, x, y, 0.5);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{4, 10}));
  loss.backward();
  for (const auto& p : f.heads->parameters()) EXPECT_TRUE(p.grad().defined());
  EXPECT_TRUE(f.net->parameters().front().grad().defined());
}

}  // namespace

// Capacity-matched heads (docs/results_cifar.md, Fig. 4): with a projection every head, whatever
// it reads (h: 12 channels, x: 16-64, both), maps to the same width before its classifier, and
// the projection's MACs are counted in the exit's cost.
TEST(EarlyExit, ProjectedHeadsHaveTheSameWidthWhateverTheyRead) {
  torch::manual_seed(4);
  models::ModelConfig cfg;
  cfg.in_channels = 1;
  auto net = models::create_model("rla_resnet20", cfg);
  net->eval();
  std::map<std::string, int64_t> fc_inputs;
  for (auto input : {models::ExitInput::kState, models::ExitInput::kMain, models::ExitInput::kBoth}) {
    auto heads = models::ExitHeads(*net, 10, models::ExitPlacement::kBlock, input, /*projection=*/64);
    heads->eval();
    EXPECT_EQ(heads->projection(), 64);
    std::set<int64_t> widths;
    for (const auto& [name, t] : models::state_dict(*heads)) {
      if (name.size() > 9 && name.compare(name.size() - 9, 9, "fc.weight") == 0) widths.insert(t.size(1));
      if (name == "heads.0.proj.weight") fc_inputs[models::to_string(input)] = t.size(1);
    }
    EXPECT_EQ(widths, (std::set<int64_t>{64})) << models::to_string(input);
    const auto all = models::forward_all_exits(*net, *heads, torch::randn({3, 1, 28, 28}));
    ASSERT_EQ(all.size(), 9u);
    for (const auto& logits : all) EXPECT_EQ(logits.sizes(), torch::IntArrayRef({3, 10}));
    // The first exit's cost: stem and block 1, then the head with its 1x1 projection (28x28 map).
    auto plain = models::ExitHeads(*net, 10, models::ExitPlacement::kBlock, input);
    const auto with = inference::exit_macs(*net, *heads, {1, 28, 28});
    const auto without = inference::exit_macs(*net, *plain, {1, 28, 28});
    const int64_t in = fc_inputs[models::to_string(input)];
    EXPECT_EQ(with[0] - without[0], 28 * 28 * in * 64 + 64 * 10 - in * 10) << models::to_string(input);
  }
  EXPECT_EQ(fc_inputs["state"], 12);
  EXPECT_EQ(fc_inputs["main"], 16);
  EXPECT_EQ(fc_inputs["both"], 28);
}
