// The fast inference path (BN folded, channels-last, split concat) against the plain eval-mode
// forward of the same network: equal within 1e-4 relative on several families, batch 1 and 4,
// and the source network's state_dict untouched.
#include <gtest/gtest.h>

#include "rla/data/loader.h"
#include "rla/data/synthetic.h"
#include "rla/engine/trainer.h"
#include "rla/inference/fast_inference.h"
#include "rla/models/registry.h"

namespace {

using namespace rla;

/// Non-trivial running statistics and affine parameters, so that folding has work to do.
void randomize_batchnorms(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  for (auto& m : net.modules(/*include_self=*/false)) {
    if (auto* bn = m->as<models::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0.0, 0.2);
      bn->running_mean.normal_(0.0, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
    }
  }
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

void check_model(const std::string& name, int64_t size) {
  SCOPED_TRACE(name);
  torch::manual_seed(7);
  auto net = models::create_model(name);
  randomize_batchnorms(*net);
  net->eval();
  std::vector<torch::Tensor> before;
  for (const auto& kv : models::state_dict(*net)) before.push_back(kv.second.clone());

  // The oneDNN backend (where the family has one) and the dense one, each layout and split.
  for (const bool onednn : {true, false}) {
    for (const bool split : {false, true}) {
      for (const bool cl : {true, false}) {
        if (onednn && (split || !cl)) continue;  // the oneDNN path has one form
        inference::FastNetwork fast(
            net, inference::FastOptions().split_concat(split).channels_last(cl).backend(onednn ? "mkldnn"
                                                                                               : "dense"));
        for (const int64_t batch : {1, 4}) {
          auto x = torch::randn({batch, 3, size, size});
          torch::Tensor ref;
          {
            torch::NoGradGuard no_grad;
            ref = net->forward(x);
          }
          auto y = fast.forward(x);
          ASSERT_EQ(y.sizes(), ref.sizes());
          EXPECT_LT(relative_error(y, ref), 1e-4)
              << fast.backend() << " split " << split << " channels_last " << cl << " batch " << batch;
          EXPECT_TRUE(y.is_contiguous());
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
  torch::Tensor ref;
  {
    torch::NoGradGuard no_grad;
    ref = bn(conv(x));
  }
  const auto folded = inference::fold_conv_bn(*conv, bn.get());
  EXPECT_LT(relative_error(folded(x.contiguous(at::MemoryFormat::ChannelsLast)), ref), 1e-6);
  EXPECT_EQ(folded.bias.size(0), 16);
}

TEST(FastInference, CifarResNetsMatchEager) {
  check_model("rla_resnet20", 32);
  check_model("resnet20", 32);
}

TEST(FastInference, ImageNetRlaResNetMatchesEager) {
  check_model("rla_resnet50", 64);
}

TEST(FastInference, OtherResNetVariantsMatchEager) {
  check_model("resnet50", 64);          // plain bottleneck, oneDNN
  check_model("rla_resnet50_eca", 64);  // ECA: the dense path
  check_model("rla_resnet20_s", 32);    // shared convs
}

TEST(FastInference, AggregationsMatchEager) {
  for (const std::string agg : {"sum", "concat"}) {
    SCOPED_TRACE(agg);
    torch::manual_seed(11);
    models::ModelConfig mc;
    mc.aggregation = models::parse_aggregation(agg);
    auto net = models::create_model("rla_resnet20", mc);
    randomize_batchnorms(*net);
    net->eval();
    auto x = torch::randn({2, 3, 32, 32});
    torch::Tensor ref;
    {
      torch::NoGradGuard no_grad;
      ref = net->forward(x);
    }
    for (const bool onednn : {true, false}) {
      inference::FastNetwork fast(net, inference::FastOptions().backend(onednn ? "mkldnn" : "dense"));
      EXPECT_LT(relative_error(fast.forward(x), ref), 1e-4) << fast.backend();
    }
  }
}

TEST(FastInference, ChoosesOneDnnTensorsForImageNetResNetsOnly) {
  if (!at::hasMKLDNN()) GTEST_SKIP() << "LibTorch built without MKLDNN";
  EXPECT_EQ(inference::FastNetwork(models::create_model("rla_resnet50")).backend(), "mkldnn");
  EXPECT_EQ(inference::FastNetwork(models::create_model("rla_resnet20")).backend(), "channels-last");
  EXPECT_EQ(
      inference::FastNetwork(models::create_model("rla_resnet20"), inference::FastOptions().backend("mkldnn"))
          .backend(),
      "mkldnn");
  EXPECT_EQ(inference::FastNetwork(models::create_model("rla_resnet50_eca")).backend(), "channels-last");
  EXPECT_EQ(inference::FastNetwork(models::create_model("dsrla_mobilenetv2_k32")).backend(), "channels-last");
  EXPECT_EQ(inference::FastNetwork(models::create_model("densenet40")).backend(), "eager");
  EXPECT_THROW(
      inference::FastNetwork(models::create_model("resnet20"), inference::FastOptions().backend("gpu")),
      c10::Error);
  EXPECT_EQ(
      inference::FastNetwork(models::create_model("rla_resnet50"), inference::FastOptions().backend("dense"))
          .backend(),
      "channels-last");
}

TEST(FastInference, MobileNetV2RlaMatchesEager) {
  check_model("dsrla_mobilenetv2_k32", 64);
}

TEST(FastInference, DenseNetFallsBackAndMatches) {
  check_model("densenet40", 32);
  inference::FastNetwork fast(models::create_model("densenet40"));
  EXPECT_FALSE(fast.specialized());
  inference::FastNetwork res(models::create_model("rla_resnet20"));
  EXPECT_TRUE(res.specialized());
  EXPECT_GT(res.folded_batchnorms(), 19);
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
