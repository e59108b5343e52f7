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

namespace {

// The state after the first block of `net`, in train mode, for a fixed input.
torch::Tensor state_after_first_block(NetworkImpl& net) {
  torch::manual_seed(7);
  auto x = torch::randn({4, 3, 32, 32});
  net.train();
  auto s = net.stem(x);
  net.run_block(0, s);
  return s.h;
}

Network seeded_model(const std::string& name, ModelConfig cfg) {
  torch::manual_seed(3);
  return create_model(name, cfg);
}

}  // namespace

TEST(ModelSwitches, ZeroInitResidualZeroesEveryBranchsLastBnAndNothingElse) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"resnet20", ".bn2.weight"},
                                                                  {"resnet29", ".bn3.weight"},
                                                                  {"rla_resnet20", ".bn2.weight"},
                                                                  {"rla_resnet29_s", ".bn3.weight"},
                                                                  {"rla_resnet50", ".bn3.weight"}};
  for (const auto& [name, last_bn] : cases) {
    SCOPED_TRACE(name);
    ModelConfig on, off;
    on.zero_init_residual = true;
    off.zero_init_residual = false;
    auto a = seeded_model(name, on), b = seeded_model(name, off);
    const auto sa = state_dict(*a), sb = state_dict(*b);
    ASSERT_EQ(sa.size(), sb.size());
    EXPECT_EQ(count_parameters(*a), count_parameters(*b));
    int zeroed = 0;
    for (size_t i = 0; i < sa.size(); ++i) {
      ASSERT_EQ(sa[i].first, sb[i].first);
      const auto& key = sa[i].first;
      const bool in_block = key.rfind("layer", 0) == 0 || key.rfind("stages.", 0) == 0;
      if (in_block && key.size() > last_bn.size() &&
          key.compare(key.size() - last_bn.size(), last_bn.size(), last_bn) == 0) {
        EXPECT_EQ(sa[i].second.abs().sum().item<double>(), 0.0) << key;
        EXPECT_TRUE(torch::equal(sb[i].second, torch::ones_like(sb[i].second))) << key;
        ++zeroed;
      } else {
        EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << key;
      }
    }
    EXPECT_EQ(zeroed, static_cast<int>(a->blocks().size()));
  }
}

TEST(ModelSwitches, StateInputKeepsKeysAndCountsButChangesTheState) {
  for (const std::string name : {"rla_resnet20", "rla_resnet29", "rla_resnet20_s"}) {
    SCOPED_TRACE(name);
    ModelConfig branch, output;
    branch.state_input = StateInput::kBranch;
    output.state_input = StateInput::kOutput;
    branch.zero_init_residual = output.zero_init_residual = false;
    auto a = seeded_model(name, branch), b = seeded_model(name, output);
    const auto sa = state_dict(*a), sb = state_dict(*b);
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      ASSERT_EQ(sa[i].first, sb[i].first);
      EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;  // same init
    }
    EXPECT_EQ(count_parameters(*a), count_parameters(*b));
    const auto ha = state_after_first_block(*a), hb = state_after_first_block(*b);
    EXPECT_GT((ha - hb).abs().max().item<double>(), 1e-3);
  }
}

TEST(ModelSwitches, BranchStateWithZeroInitStartsAtZeroButOutputStateDoesNot) {
  // With the branch zero-initialised the branch is exactly 0 at the start: a cell reading it
  // gets h = recurrent_conv(tanh(bn(0 + conv_out(0)))) = 0 in training mode.
  ModelConfig branch, output;
  branch.zero_init_residual = output.zero_init_residual = true;
  branch.state_input = StateInput::kBranch;
  output.state_input = StateInput::kOutput;
  EXPECT_EQ(state_after_first_block(*seeded_model("rla_resnet20", branch)).abs().max().item<double>(), 0.0);
  EXPECT_GT(state_after_first_block(*seeded_model("rla_resnet20", output)).abs().max().item<double>(), 1e-2);
}

TEST(ModelSwitches, ResolveFillsDefaultsAndRejectsSwitchesAModelLacks) {
  const auto plain = resolve_config(find_model("resnet20"), {});
  const auto rla = resolve_config(find_model("rla_resnet20"), {});
  // One init policy for plain and RLA CIFAR ResNets: no default comparison measures the init.
  ASSERT_TRUE(plain.zero_init_residual && rla.zero_init_residual);
  EXPECT_EQ(*plain.zero_init_residual, *rla.zero_init_residual);
  EXPECT_FALSE(plain.state_input.has_value());
  EXPECT_FALSE(plain.rla_channels.has_value());
  EXPECT_EQ(rla.rla_channels.value_or(0), 12);
  EXPECT_TRUE(rla.state_input.has_value());
  // The official ImageNet RLA models read the block output and zero bn3 (docs/models.md).
  const auto official = resolve_config(find_model("rla_resnet50"), {});
  EXPECT_EQ(official.state_input, StateInput::kOutput);
  EXPECT_EQ(official.zero_init_residual, true);
  EXPECT_EQ(resolve_config(find_model("resnet50"), {}).zero_init_residual, false);  // torchvision

  ModelConfig zi, si, k;
  zi.zero_init_residual = true;
  si.state_input = StateInput::kBranch;
  k.rla_channels = 8;
  EXPECT_THROW(create_model("densenet40", zi), std::invalid_argument);
  EXPECT_THROW(create_model("dsrla_mobilenetv2_k12", si), std::invalid_argument);
  EXPECT_THROW(create_model("resnet20", si), std::invalid_argument);
  EXPECT_THROW(create_model("resnet20", k), std::invalid_argument);
  EXPECT_NO_THROW(create_model("rla_densenet40", k));
}
