// The zoo's state_dict layout and counts against the official PyTorch models
// (tests/fixtures/*.keys.txt, written from the authors' code and torchvision 0.14).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "../support/test_util.h"
#include "rla/models/registry.h"
#include "rla/models/summary.h"

namespace {

using rla::models::create_model;

struct KeyLine {
  std::string key, shape, dtype;
};

std::vector<KeyLine> read_keys(const std::string& path, int64_t* params) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<KeyLine> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) == 0) {
      auto pos = line.find("entries, ");
      if (pos != std::string::npos) *params = std::stoll(line.substr(pos + 9));
      continue;
    }
    auto a = line.find(' '), b = line.rfind(' ');
    out.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return out;
}

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream s;
  s << "[";
  for (int64_t i = 0; i < t.dim(); ++i) s << (i ? ", " : "") << t.size(i);
  s << "]";
  return s.str();
}

std::string dtype_of(const torch::Tensor& t) {
  return t.scalar_type() == torch::kLong ? "int64" : t.scalar_type() == torch::kFloat ? "float32" : "other";
}

class FixtureKeys : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureKeys, SameKeysShapesDtypesAndOrder) {
  const std::string name = GetParam();
  int64_t expected_params = -1;
  auto expected = read_keys(rla::test::fixture(name + ".keys.txt"), &expected_params);
  auto net = create_model(name);
  auto ours = rla::models::state_dict(*net);
  ASSERT_EQ(ours.size(), expected.size()) << name;
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(ours[i].first, expected[i].key) << name << " entry " << i;
    EXPECT_EQ(shape_of(ours[i].second), expected[i].shape) << expected[i].key;
    EXPECT_EQ(dtype_of(ours[i].second), expected[i].dtype) << expected[i].key;
  }
  EXPECT_EQ(rla::models::count_parameters(*net), expected_params) << name;
}

INSTANTIATE_TEST_SUITE_P(Official, FixtureKeys,
                         ::testing::Values("resnet50", "resnet101", "mobilenet_v2", "rla_resnet50",
                                           "rla_resnet101", "rla_resnet152", "rla_resnet50_eca",
                                           "rla_resnext50_32x4d", "rla_resnext50_32x4d_se",
                                           "dsrla_mobilenetv2_k32"));

struct CountRow {
  const char* model;
  int64_t params;
  int64_t entries;  // -1: not given
  int64_t thop_ops;
};

// Names the row in test output instead of dumping its bytes.
void PrintTo(const CountRow& row, std::ostream* os) {
  *os << row.model;
}

class SpecTable : public ::testing::TestWithParam<CountRow> {};

TEST_P(SpecTable, ExactParametersAndThopOpsAt224) {
  const auto& row = GetParam();
  auto net = create_model(row.model);
  auto s = rla::models::summarize(*net, {3, 224, 224});
  EXPECT_EQ(s.params, row.params) << row.model;
  if (row.entries >= 0) {
    EXPECT_EQ(s.state_dict_entries, row.entries) << row.model;
  }
  EXPECT_EQ(s.thop_ops, row.thop_ops) << row.model;
  EXPECT_EQ(s.output, (std::vector<int64_t>{1, 1000}));
}

// docs/models.md, "Exact counts" (read off the official code).
INSTANTIATE_TEST_SUITE_P(Official, SpecTable,
                         ::testing::Values(CountRow{"resnet50", 25557032, 320, 4111514624},
                                           CountRow{"rla_resnet50", 25870696, 413, 4477903584},
                                           CountRow{"rla_resnet50_eca", 25870782, 429, 4483525856},
                                           CountRow{"resnet101", 44549160, 626, 7833971712},
                                           CountRow{"rla_resnet101", 45003176, 804, 8367760352},
                                           CountRow{"rla_resnet101_eca", 45003347, -1, 8376899040},
                                           CountRow{"rla_resnet152", 60770792, 1195, 12313964768},
                                           CountRow{"rla_resnext50_32x4d", 25463400, 413, 4686786272},
                                           CountRow{"mobilenet_v2", 3504872, 314, 314130496},
                                           CountRow{"dsrla_mobilenetv2_k32", 3624168, 416, 368908576},
                                           CountRow{"dsrla_mobilenetv2_k32_eca", 3624199, -1, 369486080}),
                         [](const auto& info) { return std::string(info.param.model); });

TEST(CifarZoo, ClassicParameterCounts) {
  // He et al. 2016, Table 6: ResNet-20 0.27 M, ResNet-32 0.46 M (10 classes). Those use the
  // parameter-free option-A shortcut (269,722 and 464,154); docs/models.md specifies option B, which
  // adds two 1x1 conv + BN shortcuts: 16*32 + 2*32 + 32*64 + 2*64 = 2,752 parameters.
  auto p20 = rla::models::count_parameters(*create_model("resnet20"));
  auto p32 = rla::models::count_parameters(*create_model("resnet32"));
  EXPECT_EQ(p20, 269722 + 2752);
  EXPECT_EQ(p32, 464154 + 2752);
  EXPECT_NEAR(p20 / 1e6, 0.27, 0.005);
  EXPECT_NEAR(p32 / 1e6, 0.46, 0.01);
}

TEST(CifarZoo, SharedModelsBarelyGrowWithDepth) {
  const std::vector<std::pair<std::string, std::string>> pairs = {{"rla_resnet20_s", "rla_resnet44_s"},
                                                                  {"rla_resnet56_s", "rla_resnet110_s"},
                                                                  {"rla_resnet29_s", "rla_resnet47_s"}};
  for (const auto& [shallow, deep] : pairs) {
    const double a = rla::models::count_parameters(*create_model(shallow));
    const double b = rla::models::count_parameters(*create_model(deep));
    EXPECT_LT(b, 1.05 * a) << deep << " vs " << shallow;
  }
  // ... while the unshared deeper model grows roughly with depth.
  EXPECT_GT(rla::models::count_parameters(*create_model("rla_resnet110")),
            1.8 * rla::models::count_parameters(*create_model("rla_resnet56")));
}

TEST(CifarZoo, DenseNetSizes) {
  // Huang et al. 2017: DenseNet (k=12, L=40) 1.0 M, DenseNet-BC (k=12, L=100) 0.8 M.
  EXPECT_NEAR(rla::models::count_parameters(*create_model("densenet40")) / 1e6, 1.0, 0.1);
  EXPECT_NEAR(rla::models::count_parameters(*create_model("densenet_bc100")) / 1e6, 0.8, 0.05);
}

}  // namespace
