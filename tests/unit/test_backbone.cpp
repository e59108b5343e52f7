// models/backbone.h: stage outputs of every ResNet-family model (checked against the official
// mmdetection backbone in tests/parity/test_parity_interop.cpp), their names, and mmdetection's
// frozen_stages / norm_eval semantics.
#include <gtest/gtest.h>

#include "rla/models/backbone.h"
#include "rla/models/layers.h"
#include "rla/models/registry.h"

using namespace rla;

namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

}  // namespace

TEST(Backbone, StageOutputsOfCifarAndImageNetResNets) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  auto cifar = models::create_model("rla_resnet20");
  cifar->eval();
  const auto x = torch::randn({2, 3, 32, 32});
  const auto with_h = models::BackboneOptions().with_state(true);
  const auto f = models::forward_features(*cifar, x, with_h);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].sizes(), torch::IntArrayRef({2, 16, 32, 32}));
  EXPECT_EQ(f[1].sizes(), torch::IntArrayRef({2, 32, 16, 16}));
  EXPECT_EQ(f[2].sizes(), torch::IntArrayRef({2, 64, 8, 8}));
  EXPECT_EQ(f[3].sizes(), torch::IntArrayRef({2, 12, 8, 8}));
  EXPECT_EQ(models::feature_names(*cifar, {3, 32, 32}, with_h),
            (std::vector<std::string>{"C0", "C1", "C2", "h"}));
  // Without the state: the stage outputs alone; a plain net has no h to give.
  EXPECT_EQ(models::forward_features(*cifar, x).size(), 3u);
  auto plain = models::create_model("resnet50");
  plain->eval();
  const auto big = torch::randn({1, 3, 64, 64});
  EXPECT_EQ(models::feature_names(*plain, {3, 64, 64}, with_h),
            (std::vector<std::string>{"C2", "C3", "C4", "C5"}));
  // The last stage output is what the classifier pools: the same as the eager blocks give.
  auto s = plain->stem(big);
  for (size_t i = 0; i < plain->blocks().size(); ++i) plain->run_block(i, s);
  EXPECT_TRUE(torch::equal(models::forward_features(*plain, big).back(), s.x));
  // The prepared (fast) copy gives the same features in dense tensors.
  auto prepared = cifar->copy();
  prepared->prepare_inference({});
  const auto g = models::forward_features(*prepared, x, with_h);
  for (size_t i = 0; i < f.size(); ++i)
    EXPECT_LT((g[i].contiguous() - f[i]).abs().max().item<double>(), 1e-4 * f[i].abs().max().item<double>())
        << i;
}

TEST(Backbone, FrozenStagesAndNormEvalFollowMmdetection) {
  auto net = models::create_model("rla_resnet50");
  const auto o = models::BackboneOptions().frozen_stages(1).norm_eval(false);
  models::freeze_backbone(*net, o);
  for (const auto& p : net->named_parameters()) {
    const auto& n = p.key();
    const bool want_frozen = starts_with(n, "conv1.") || starts_with(n, "bn1.") ||
                             starts_with(n, "stages.0.") || starts_with(n, "stage_bns.0.") ||
                             starts_with(n, "conv_outs.0.") || starts_with(n, "recurrent_convs.0.") ||
                             starts_with(n, "stage_bns.3.2.");
    EXPECT_EQ(p.value().requires_grad(), !want_frozen) << n;
  }
  models::set_backbone_training(*net, true, o);
  for (const auto& m : net->named_modules("", false)) {
    const auto& n = m.key();
    const bool frozen = starts_with(n, "stages.0") || starts_with(n, "stage_bns.0") || n == "bn1";
    const bool trains = starts_with(n, "stages.1") || starts_with(n, "stage_bns.1");
    if (frozen || trains) {
      EXPECT_EQ(m.value()->is_training(), trains) << n;
    }
  }
  // Gradients reach stage 2 and not the frozen parts.
  torch::manual_seed(1);
  const auto f = models::forward_features(*net, torch::randn({2, 3, 64, 64}), o);
  f.back().square().sum().backward();  // (a plain sum would be flat through the BatchNorms)
  for (const auto& p : net->named_parameters()) {
    const bool frozen = starts_with(p.key(), "stages.0.") || starts_with(p.key(), "conv1.");
    if (frozen) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
    // (bn3 starts at zero weight: the branch's convolutions get no gradient yet, its scale does)
    if (p.key() == "stages.2.0.bn3.weight") {
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0);
    }
  }
  // norm_eval: every BatchNorm in eval mode while the rest trains.
  models::set_backbone_training(*net, true, models::BackboneOptions().norm_eval(true));
  for (const auto& m : net->named_modules("", false)) {
    const bool bn = dynamic_cast<models::BatchNorm2dImpl*>(m.value().get()) != nullptr;
    if (bn) {
      EXPECT_FALSE(m.value()->is_training()) << m.key();
    }
  }
  EXPECT_TRUE(net->is_training());
  // Other families and out-of-range values are refused.
  auto mobile = models::create_model("mobilenet_v2");
  EXPECT_THROW(models::freeze_backbone(*mobile, o), std::invalid_argument);
  EXPECT_THROW(models::freeze_backbone(*net, models::BackboneOptions().frozen_stages(5)),
               std::invalid_argument);
  auto plain = models::create_model("resnet20");
  models::freeze_backbone(*plain, models::BackboneOptions().frozen_stages(3));
  for (const auto& p : plain->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), starts_with(p.key(), "fc.")) << p.key();
}
