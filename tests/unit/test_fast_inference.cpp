// The fast inference path (the network's own inference form: BN folded, channels-last, split
// conv1, oneDNN layout) against the plain eval-mode forward of the same network: equal within
// 1e-4 relative for one registry entry per structural variant, batch 1 and 3, both backends;
// the source network untouched.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <optional>

#include "../support/batchnorm.h"
#include "../support/compare.h"
#include "rla/config.h"
#include "rla/data/loader.h"
#include "rla/data/synthetic.h"
#include "rla/engine/evaluate.h"
#include "rla/inference/fast_inference.h"
#include "rla/models/band_team.h"
#include "rla/models/layers.h"
#include "rla/models/registry.h"
#include "rla/util/env.h"

namespace {

using rla::test::randomize_batchnorms;
using rla::test::relative_error;

using namespace rla;

struct Variant {
  std::string name;
  int64_t size;  ///< input height and width
  models::ModelConfig config;
  bool every_form = true;  ///< NCHW and split conv1 too (else channels-last, unsplit: the default)
};

models::ModelConfig with(std::optional<models::Aggregation> agg, std::optional<models::StateInput> in = {}) {
  models::ModelConfig c;
  c.aggregation = agg;
  c.state_input = in;
  return c;
}

// The fast path of `v` against the eval forward of the same network, for each backend the
// family has, with and without channels-last and the split conv1, at batch 1 and 3; the source
// network's values and mode stay untouched.
void check_variant(const Variant& v) {
  SCOPED_TRACE(v.name);
  torch::manual_seed(7);
  auto net = models::create_model(v.name, v.config);
  randomize_batchnorms(*net);
  net->eval();
  std::vector<torch::Tensor> before;
  for (const auto& kv : models::state_dict(*net)) before.push_back(kv.second.clone());
  for (const std::string backend : {"mkldnn", "dense"}) {
    for (const bool split : {false, true}) {
      for (const bool cl : {true, false}) {
        if (backend == "mkldnn" && (split || !cl)) continue;  // the oneDNN layout has one form
        if (!v.every_form && (split || !cl)) continue;
        inference::FastNetwork fast(
            net, inference::FastOptions().split_concat(split).channels_last(cl).backend(backend));
        for (const int64_t batch : {1, 3}) {
          auto x = torch::randn({batch, 3, v.size, v.size});
          torch::Tensor ref;
          {
            torch::NoGradGuard no_grad;
            ref = net->forward(x);
          }
          auto y = fast.forward(x);
          ASSERT_EQ(y.sizes(), ref.sizes());
          EXPECT_LT(relative_error(y, ref), 1e-4)
              << fast.backend() << " split " << split << " channels_last " << cl << " batch " << batch;
        }
      }
    }
  }
  const auto after = models::state_dict(*net);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(torch::equal(after[i].second, before[i])) << after[i].first;
  EXPECT_FALSE(net->is_training());
}

TEST(FastInference, FoldsOneConvAndBatchNormExactly) {
  torch::manual_seed(3);
  auto conv = models::make_conv(8, 16, 3, /*stride=*/2);
  auto bn = models::make_bn(16);
  randomize_batchnorms(*bn);
  bn->eval();
  auto x = torch::randn({2, 8, 9, 9});
  torch::NoGradGuard no_grad;
  const auto ref = bn(conv(x));
  auto folded = conv->folded(bn.get());
  EXPECT_LT(relative_error(folded->forward(x), ref), 1e-6);
  EXPECT_EQ(folded->bias.size(0), 16);
  // A split along the input channels adds up to the whole.
  auto lo = conv->folded(bn.get(), 0, 5), hi = conv->folded(bn.get(), 5, 8);
  hi->bias = torch::Tensor();
  EXPECT_LT(relative_error(lo->forward(x.slice(1, 0, 5)) + hi->forward(x.slice(1, 5, 8)), ref), 1e-6);
}

// relu(conv(x) + add) in one call: with prepared convolutions the ReLU and the add are oneDNN
// post-ops and the result lands in add's storage; every other build runs the separate operations.
TEST(FastInference, FusedConvolutionEqualsTheSeparateOperations) {
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  for (const int64_t kernel : {1, 3}) {
    auto conv = models::Conv2d(models::Conv2dImpl(12, 20, kernel, /*stride=*/1, /*groups=*/1, /*bias=*/true));
    models::to_channels_last(*conv);
    auto x = torch::randn({3, 12, 10, 10}).contiguous(at::MemoryFormat::ChannelsLast);
    auto add = torch::randn({3, 20, 10, 10}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto ref_sum = torch::relu(conv(x) + add), ref_plain = torch::relu(conv(x));
    conv->use_onednn(/*pack=*/false);
    auto add_copy = add.clone();
    EXPECT_LT(relative_error(conv->forward_fused(x, true, add_copy), ref_sum), 1e-5) << "kernel " << kernel;
    EXPECT_LT(relative_error(conv->forward_fused(x, true), ref_plain), 1e-5) << "kernel " << kernel;
    EXPECT_LT(relative_error(conv->forward_fused(x, false, add.clone()), conv(x) + add), 1e-5);
#ifdef RLA_HAVE_DNNL
    const char* env = std::getenv("RLA_PREPARED_CONV");
    const char* fuse = std::getenv("RLA_FUSED_POST_OPS");
    if ((env == nullptr || std::string(env) != "0") && (fuse == nullptr || std::string(fuse) != "0")) {
      auto target = add.clone();
      EXPECT_EQ(conv->forward_fused(x, true, target).data_ptr(), target.data_ptr())
          << "the prepared convolution should write into the added tensor";
    }
#endif
  }
}

// A strided 1x1 convolution (the ResNets' downsample) runs prepared as a subsample and a stride-1
// primitive: equal to the convolution, at odd and even sizes and strides 2 and 3.
TEST(FastInference, StridedPointwiseConvolutionEqualsTheConvolution) {
  torch::manual_seed(6);
  torch::NoGradGuard no_grad;
  for (const auto& [stride, h, w] : std::vector<std::array<int64_t, 3>>{{2, 8, 8}, {2, 9, 7}, {3, 10, 11}}) {
    auto conv = models::Conv2d(models::Conv2dImpl(24, 40, 1, stride, /*groups=*/1, /*bias=*/true));
    models::to_channels_last(*conv);
    const auto x = torch::randn({3, 24, h, w}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto want = conv(x);
    conv->use_onednn(/*pack=*/false);
    const auto got = conv->forward_fused(x, true);
    ASSERT_EQ(got.sizes(), want.sizes()) << "stride " << stride << ", " << h << "x" << w;
    EXPECT_LT(relative_error(got, torch::relu(want)), 1e-5) << "stride " << stride << ", " << h << "x" << w;
    EXPECT_LT(relative_error(conv(x), want), 1e-5);  // the plain forward, prepared too
#ifdef RLA_HAVE_DNNL
    // The prepared path ran (it alone writes the result into the tensor it adds).
    if (util::env_switch_on("RLA_PREPARED_CONV") && util::env_switch_on("RLA_FUSED_POST_OPS")) {
      auto target = torch::randn_like(want);
      const auto expected = torch::relu(want + target);
      EXPECT_EQ(conv->forward_fused(x, true, target).data_ptr(), target.data_ptr());
      EXPECT_LT(relative_error(target, expected), 1e-5);
    }
#endif
  }
}

// At batch 1 with two threads a small prepared convolution runs as two bands of output rows, one
// single-threaded primitive each, the image's padding only at its outer edges: equal to the
// convolution with every epilogue (ReLU, the residual sum, the RLA state update's scale, shift and
// tanh), at odd and even heights, strides 1 and 2, 3x3 and 1x1.
TEST(FastInference, BatchOneRowBandsEqualTheWholeConvolution) {
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  struct Case {
    int64_t kernel, stride, h, w;
  };
  for (const auto& c : {Case{3, 1, 9, 7}, Case{3, 1, 8, 8}, Case{3, 2, 10, 9}, Case{3, 2, 11, 11},
                        Case{1, 1, 6, 5}, Case{3, 1, 4, 6}}) {
    SCOPED_TRACE(testing::Message() << "k" << c.kernel << " s" << c.stride << " " << c.h << "x" << c.w);
    auto conv = models::Conv2d(models::Conv2dImpl(12, 20, c.kernel, c.stride, /*groups=*/1, /*bias=*/true));
    models::to_channels_last(*conv);
    const auto x = torch::randn({1, 12, c.h, c.w}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto plain = conv(x);
    const auto add = torch::randn_like(plain).contiguous(at::MemoryFormat::ChannelsLast);
    const auto scale = torch::rand({20}) + 0.5, shift = torch::randn({20});
    const auto state = (plain + add) * scale.view({1, 20, 1, 1}) + shift.view({1, 20, 1, 1});
    conv->use_onednn(/*pack=*/false);
    EXPECT_LT(relative_error(conv->forward_fused(x, true), plain.relu()), 1e-5);
    EXPECT_LT(relative_error(conv->forward_fused(x, true, add.clone()), (plain + add).relu()), 1e-5);
    EXPECT_LT(relative_error(conv->forward_state_update(x, add.clone(), scale, shift), state.tanh()), 1e-5);
  }
  at::set_num_threads(threads);
}

// At batch 1 on two threads the fast path runs a forward whose layers are all banded in a band
// team (models/band_team.h): the same band primitives, so the same logits, value for value; an
// input size with a layer too large for bands keeps the per-layer OpenMP regions.
TEST(FastInference, BatchOneBandTeamGivesTheSameLogits) {
#if !defined(RLA_HAVE_DNNL)
  GTEST_SKIP() << "built without oneDNN's headers: no prepared convolutions, no bands";
#endif
  if (!util::env_switch_on("RLA_PREPARED_CONV")) GTEST_SKIP() << "prepared convolutions switched off";
  torch::manual_seed(7);
  const int threads = at::get_num_threads();
  const bool enabled = models::band_team_enabled();
  at::set_num_threads(2);
  for (const std::string name : {"rla_resnet20", "resnet20"}) {
    SCOPED_TRACE(name);
    auto net = models::create_model(name);
    randomize_batchnorms(*net);
    net->eval();
    inference::FastNetwork fast(net);
    for (const int64_t size : {32, 160}) {  // 160: the first stage's 3x3 layers exceed the band limit
      SCOPED_TRACE(size);
      const auto x = torch::randn({1, 3, size, size});
      models::set_band_team_enabled(false);
      const auto ref = fast.forward(x);
      models::set_band_team_enabled(true);
      EXPECT_TRUE(torch::equal(fast.forward(x), ref));  // the first forward of a size: no team yet
      const int64_t before = models::band_team_handoffs();
      const auto y = fast.forward(x);
      const int64_t handoffs = models::band_team_handoffs() - before;
      EXPECT_TRUE(torch::equal(y, ref)) << "largest difference " << (y - ref).abs().max().item<float>();
      if (size == 32) {
        // resnet20: the stem and 20 block convolutions; rla_resnet20 also conv_out and the
        // recurrent convolution of its 9 blocks, and conv1's part over h from the second block on
        EXPECT_EQ(handoffs, name == "resnet20" ? 21 : 21 + 9 + 9 + 8) << "every layer on the team";
      } else {
        EXPECT_EQ(handoffs, 0) << "a layer ran as one multi-threaded primitive: no team";
      }
    }
  }
  models::set_band_team_enabled(enabled);
  at::set_num_threads(threads);
}

// The stem's max pooling without autograd runs our channels-last kernel: equal to ATen's, value
// for value, at odd and even sizes, with the window clipped at every border; with autograd ATen's.
TEST(FastInference, StemMaxPoolingEqualsATens) {
  torch::manual_seed(3);
  for (const auto& [c, h, w] :
       std::vector<std::array<int64_t, 3>>{{3, 1, 1}, {16, 2, 3}, {64, 7, 7}, {5, 12, 9}}) {
    const auto x = torch::randn({2, c, h, w}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto want = torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
    torch::Tensor got;
    {
      torch::NoGradGuard no_grad;
      got = models::max_pool_3x3s2(x);
    }
    ASSERT_EQ(got.sizes(), want.sizes()) << c << "x" << h << "x" << w;
    EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::equal(got, want)) << c << "x" << h << "x" << w;
    // A NaN anywhere in a window is that window's maximum, as in ATen's.
    auto with_nan = x.clone();
    with_nan.index_put_({0, 0, h - 1, w - 1}, std::nan(""));
    {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(models::max_pool_3x3s2(with_nan).isnan(),
                               torch::max_pool2d(with_nan, {3, 3}, {2, 2}, {1, 1}).isnan()));
    }
    // An NCHW input and a tensor that needs a gradient keep ATen's path, with its backward.
    EXPECT_TRUE(torch::equal(models::max_pool_3x3s2(x.contiguous()), want));
    const auto leaf = x.clone().requires_grad_(true);
    models::max_pool_3x3s2(leaf).sum().backward();
    EXPECT_TRUE(leaf.grad().defined());
  }
}

// The RLA state update in one call: tanh(bn(h + conv_out(y))) with the BN's running statistics as
// a per-channel scale and shift, equal to the separate operations (and, prepared, written into h).
TEST(FastInference, FusedStateUpdateEqualsTheSeparateOperations) {
  torch::manual_seed(5);
  torch::NoGradGuard no_grad;
  auto conv = models::Conv2d(models::Conv2dImpl(20, 12, 1));
  models::to_channels_last(*conv);
  auto bn = models::BatchNorm2d(models::BatchNorm2dImpl(12));
  bn->running_mean.normal_(0, 0.3);
  bn->running_var.uniform_(0.5, 2.0);
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.normal_(0, 0.2);
  bn->eval();
  const auto y = torch::randn({2, 20, 8, 8}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto h = torch::randn({2, 12, 8, 8}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto want = bn(h + conv(y)).tanh();
  const auto [s, t] = bn->affine();
  // Unprepared: the separate operations.
  EXPECT_LT(relative_error(conv->forward_state_update(y, h.clone(), s.flatten(), t.flatten()), want), 1e-5);
  conv->use_onednn(/*pack=*/false);
  auto target = h.clone();
  const auto got = conv->forward_state_update(y, target, s.flatten(), t.flatten());
  EXPECT_LT(relative_error(got, want), 1e-5);
#ifdef RLA_HAVE_DNNL
  const char* env = std::getenv("RLA_PREPARED_CONV");
  const char* fuse = std::getenv("RLA_FUSED_POST_OPS");
  if ((env == nullptr || std::string(env) != "0") && (fuse == nullptr || std::string(fuse) != "0")) {
    EXPECT_TRUE(conv->fusable(y));
    EXPECT_EQ(got.data_ptr(), target.data_ptr()) << "the prepared convolution should write into h";
  }
#endif
}

// One registry entry per structural variant of the zoo.
TEST(FastInference, CifarResNetVariantsMatchEager) {
  for (const auto& v : std::vector<Variant>{{"resnet20", 32, {}},
                                            {"resnet29", 32, {}},
                                            {"rla_resnet20", 32, with({}, models::StateInput::kBranch)},
                                            {"rla_resnet20", 32, with({}, models::StateInput::kOutput)},
                                            {"rla_resnet20_s", 32, {}},
                                            {"rla_resnet29", 32, {}},
                                            {"rla_resnet20", 32, with(models::Aggregation::kSum)},
                                            {"rla_resnet20", 32, with(models::Aggregation::kConcat)}})
    check_variant(v);
}

TEST(FastInference, ImageNetResNetVariantsMatchEager) {
  // Each costs seconds (25 M parameters, copied per form): every form for rla_resnet50 only.
  for (const auto& v : std::vector<Variant>{{"resnet50", 64, {}, false},
                                            {"rla_resnet50", 64, {}, true},
                                            {"rla_resnext50_32x4d", 64, {}, false},
                                            {"rla_resnet50_se", 64, {}, false},
                                            {"rla_resnet50_eca", 64, {}, false},
                                            {"rla_resnet50", 64, with(models::Aggregation::kConcat), false},
                                            {"rla_resnet50", 64, with(models::Aggregation::kSum), false}})
    check_variant(v);
}

TEST(FastInference, MobileNetV2VariantsMatchEager) {
  for (const auto& v :
       std::vector<Variant>{{"mobilenet_v2", 64, {}, false},
                            {"rla_mobilenetv2_k12", 64, {}, false},
                            {"dsrla_mobilenetv2_k32_eca", 64, {}, true},
                            {"dsrla_mobilenetv2_k12", 64, with(models::Aggregation::kConcat), false}})
    check_variant(v);
}

TEST(FastInference, DenseNetVariantsMatchEager) {
  for (const auto& v : std::vector<Variant>{{"densenet40", 32, {}},
                                            {"densenet_bc100", 32, {}},
                                            {"rla_densenet40", 32, {}},
                                            {"rla_densenet40", 32, with(models::Aggregation::kSum)}})
    check_variant(v);
}

TEST(FastInference, ChoosesOneDnnTensorsForImageNetResNetsOnly) {
  if (!at::hasMKLDNN()) GTEST_SKIP() << "LibTorch built without MKLDNN";
  auto backend = [](const std::string& name, const std::string& choice = "auto") {
    return inference::FastNetwork(models::create_model(name), inference::FastOptions().backend(choice))
        .backend();
  };
  // With prepared convolutions (oneDNN's headers in the build) channels-last wins for ResNets too;
  // ResNeXt's grouped convolutions are not prepared and keep the oneDNN layout.
#ifdef RLA_HAVE_DNNL
  const bool prepared =
      std::getenv("RLA_PREPARED_CONV") == nullptr || std::string(std::getenv("RLA_PREPARED_CONV")) != "0";
#else
  const bool prepared = false;
#endif
  EXPECT_EQ(backend("rla_resnet50"), prepared ? "channels-last" : "mkldnn");
  EXPECT_EQ(backend("rla_resnext50_32x4d"), "mkldnn");
  EXPECT_EQ(backend("rla_resnet20"), "channels-last");
  EXPECT_EQ(backend("rla_resnet20", "mkldnn"), "mkldnn");
  EXPECT_EQ(backend("rla_resnet50_eca"), "channels-last");
  EXPECT_EQ(backend("dsrla_mobilenetv2_k32"), "channels-last");
  EXPECT_EQ(backend("densenet40"), "channels-last");
  EXPECT_EQ(backend("rla_resnet50", "dense"), "channels-last");
  EXPECT_THROW(backend("resnet20", "gpu"), std::invalid_argument);
}

TEST(FastInference, FoldsEveryBatchNormThatFollowsAConvolution) {
  // resnet20: stem + 9 blocks x 2 + 2 shortcuts = 21; rla_resnet20 adds 9 state BNs.
  EXPECT_EQ(inference::FastNetwork(models::create_model("resnet20")).folded_batchnorms(), 21);
  EXPECT_EQ(inference::FastNetwork(models::create_model("rla_resnet20")).folded_batchnorms(), 30);
  EXPECT_EQ(inference::FastNetwork(models::create_model("densenet40")).folded_batchnorms(),
            0);  // pre-activation
  EXPECT_EQ(inference::FastNetwork(models::create_model("rla_densenet40")).folded_batchnorms(), 36);
}

TEST(FastInference, EvaluatesLikeTheEagerModel) {
  // `rla eval --fast`: the same meter through engine::evaluate, batch by batch.
  torch::manual_seed(5);
  models::ModelConfig mc;
  mc.in_channels = 1;
  auto net = models::create_model("rla_resnet20", mc);
  randomize_batchnorms(*net);
  data::SyntheticOptions so;
  so.size = 70;
  data::LoaderOptions lo;
  lo.batch_size = 32;  // 70 = 32 + 32 + 6
  lo.shuffle = false;
  lo.workers = 0;
  data::DataLoader loader(data::make_synthetic(so), {}, lo);
  const auto eager = engine::evaluate(*net, loader, 10);
  inference::FastNetwork fast(net);
  const auto folded =
      engine::evaluate([&fast](const torch::Tensor& x) { return fast.forward(x); }, loader, 10);
  EXPECT_EQ(folded.count(), 70);
  EXPECT_EQ(folded.top1(), eager.top1());
  EXPECT_NEAR(folded.loss(), eager.loss(), 1e-4 * std::max(1.0, eager.loss()));
}

}  // namespace
