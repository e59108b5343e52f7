// Every registered model runs forward and backward with the right shapes and finite values,
// the RLA cell's gradients agree with finite differences, and the CLI rejects bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/test_util.h"
#include "rla/models/registry.h"
#include "rla/models/resnet.h"

namespace {

using namespace rla::models;

void check_forward_backward(const std::string& name, int64_t channels, int64_t size, int64_t classes) {
  ModelConfig cfg;
  cfg.num_classes = classes;
  cfg.in_channels = channels;
  auto net = create_model(name, cfg);
  net->train();
  auto x = torch::randn({2, channels, size, size});
  auto logits = net->forward(x);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, classes})) << name;
  ASSERT_TRUE(torch::isfinite(logits).all().item<bool>()) << name;
  logits.logsumexp(1).sum().backward();
  int64_t with_grad = 0, params = 0;
  for (const auto& p : unique_parameters(*net)) {
    ++params;
    if (!p.grad().defined()) continue;
    ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << name;
    ++with_grad;
  }
  EXPECT_EQ(with_grad, params) << name << ": every parameter should receive a gradient";
}

TEST(ZooRuns, CifarModelsOnGreyAndColourInputs) {
  for (const auto& e : model_registry()) {
    if (e.family != "cifar") continue;
    SCOPED_TRACE(e.name);
    check_forward_backward(e.name, 1, 28, 10);
    check_forward_backward(e.name, 3, 32, 100);
  }
}

TEST(ZooRuns, ImageNetModelsAtSmallSize) {
  for (const auto& e : model_registry()) {
    if (e.family != "imagenet") continue;
    SCOPED_TRACE(e.name);
    check_forward_backward(e.name, 3, 64, 7);
  }
}

TEST(ZooRuns, AggregationChoicesRunOnEveryRlaFamily) {
  for (const std::string name :
       {"rla_resnet20", "rla_resnet29_s", "rla_densenet40", "dsrla_mobilenetv2_k12"}) {
    for (const std::string agg : {"rla", "sum", "concat"}) {
      SCOPED_TRACE(name + "/" + agg);
      ModelConfig cfg;
      cfg.aggregation = parse_aggregation(agg);
      cfg.num_classes = 10;
      auto net = create_model(name, cfg);
      const int64_t size = name.find("mobilenet") != std::string::npos ? 64 : 32;
      auto y = net->forward(torch::randn({2, 3, size, size}));
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}));
      EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
    }
  }
}

TEST(ZooRuns, StateChannelsFollowConfig) {
  ModelConfig cfg;
  cfg.rla_channels = 5;
  auto net = create_model("rla_resnet20", cfg);
  EXPECT_EQ(net->state_channels(), 5);
  auto s = net->stem(torch::randn({1, 3, 32, 32}));
  EXPECT_EQ(s.h.sizes(), (std::vector<int64_t>{1, 5, 32, 32}));
  for (size_t i = 0; i < net->blocks().size(); ++i) net->run_block(i, s);
  EXPECT_EQ(s.h.sizes(), (std::vector<int64_t>{1, 5, 8, 8}));
  EXPECT_EQ(s.x.sizes(), (std::vector<int64_t>{1, 64, 8, 8}));
}

TEST(RlaCell, GradientsMatchFiniteDifferences) {
  // float64, tiny sizes: h' = recurrent_conv(tanh(bn(h + conv_out(y)))) in training mode.
  torch::manual_seed(0);
  StageCell cell = make_stage_cell(Aggregation::kRla, 3, 2, false);
  auto bn = BatchNorm2d(2);
  cell.conv_out->to(torch::kDouble);
  cell.recurrent_conv->to(torch::kDouble);
  bn->to(torch::kDouble);
  auto h = torch::randn({2, 2, 4, 4}, torch::kDouble).requires_grad_();
  auto y = torch::randn({2, 3, 4, 4}, torch::kDouble).requires_grad_();
  auto w = cell.recurrent_conv->weight;
  auto f = [&]() {
    return (aggregate(Aggregation::kRla, h, y, cell, bn) *
            torch::arange(64, torch::kDouble).view({2, 2, 4, 4}).cos())
        .sum();
  };
  auto out = f();
  auto grads = torch::autograd::grad({out}, {h, y, w, cell.conv_out->weight, bn->weight});
  const double eps = 1e-6;
  std::vector<torch::Tensor> inputs = {h, y, w, cell.conv_out->weight, bn->weight};
  for (size_t t = 0; t < inputs.size(); ++t) {
    auto flat = inputs[t].detach().view(-1);
    auto g = grads[t].reshape(-1);
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 7)) {
      torch::NoGradGuard ng;
      const double orig = flat[i].item<double>();
      flat[i] = orig + eps;
      const double up = f().item<double>();
      flat[i] = orig - eps;
      const double down = f().item<double>();
      flat[i] = orig;
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(g[i].item<double>(), numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << "input " << t << " element " << i;
    }
  }
}

TEST(Cli, UnknownModelSuggestsCloseNames) {
  auto r = rla::test::run_rla("summary --model rla_resnet5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown model 'rla_resnet5'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rla_resnet50"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Cli, MalformedInputIsOneLineError) {
  for (const std::string bad : {"3,32", "3,x,32", "3,32,32,", "0,32,32", "-1,2,3", "3,32,32,1"}) {
    auto r = rla::test::run_rla("summary --model resnet20 --input " + bad);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE(r.output.find("malformed --input"), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

TEST(Cli, SummaryJsonHasTotals) {
  auto r = rla::test::run_rla("summary --model rla_resnet50 --json --totals");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["params"].get<int64_t>(), 25870696);
  EXPECT_EQ(j["thop_ops"].get<int64_t>(), 4477903584);
  EXPECT_GT(j["macs"].get<int64_t>(), 4000000000);
}

TEST(Cli, SummaryOnFashionMnistShape) {
  auto r = rla::test::run_rla("summary --model rla_resnet20 --input 1,28,28 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["output"], nlohmann::json({1, 10}));
  EXPECT_GT(j["layers"].size(), 40u);
}

TEST(Cli, ListShowsEveryModel) {
  auto r = rla::test::run_rla("list");
  ASSERT_EQ(r.exit_code, 0);
  for (const auto& e : model_registry()) EXPECT_NE(r.output.find(e.name + " "), std::string::npos) << e.name;
  EXPECT_NE(r.output.find("25,870,696"), std::string::npos);
}

}  // namespace
