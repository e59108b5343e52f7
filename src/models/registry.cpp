#include "rla/models/registry.h"

#include <algorithm>

#include <fmt/format.h>

#include "rla/models/densenet.h"
#include "rla/models/mobilenet.h"
#include "rla/models/resnet.h"

namespace rla::models {
namespace {

constexpr int64_t kImageNetK = 32;  // rla_channel of every official ImageNet model
constexpr int64_t kCifarK = 12;     // SPEC §3.2 default

template <typename Impl, typename Options>
Network finish(Options o, const ModelConfig& cfg) {
  auto net = std::make_shared<Impl>(o);
  if (cfg.channels_last) to_channels_last(*net);
  return net;
}

// Applies the user's overrides to a family's options struct.
template <typename Options>
Options apply(Options o, const ModelConfig& c, bool rla, int64_t default_k) {
  o.num_classes(c.num_classes.value_or(o.num_classes()));
  o.in_channels(c.in_channels.value_or(o.in_channels()));
  if (rla) {
    o.rla_channels(c.rla_channels.value_or(default_k));
    TORCH_CHECK(o.rla_channels() > 0, "--rla-channels must be positive, got ", o.rla_channels());
    o.aggregation(c.aggregation.value_or(Aggregation::kRla));
  }
  return o;
}

std::vector<ModelEntry> build_registry() {
  std::vector<ModelEntry> r;
  auto add = [&r](std::string name, std::string family, std::string desc, bool rla,
                  std::function<Network(const ModelConfig&)> fn) {
    r.push_back(ModelEntry{std::move(name), std::move(family), std::move(desc), rla, std::move(fn)});
  };

  // ---- ImageNet ResNets / ResNeXts: (name stem, depth list, groups, width per group)
  struct Deep {
    const char* name;
    std::vector<int64_t> layers;
    int64_t groups, width;
  };
  const std::vector<Deep> deep = {{"resnet50", {3, 4, 6, 3}, 1, 64},
                                  {"resnet101", {3, 4, 23, 3}, 1, 64},
                                  {"resnet152", {3, 8, 36, 3}, 1, 64},
                                  {"resnext50_32x4d", {3, 4, 6, 3}, 32, 4},
                                  {"resnext101_32x4d", {3, 4, 23, 3}, 32, 4}};
  for (const auto& d : deep) {
    auto base = ResNetOptions().layers(d.layers).groups(d.groups).width_per_group(d.width);
    add(d.name, "imagenet", fmt::format("{} (torchvision layout)", d.name), false,
        [base](const ModelConfig& c) { return finish<ResNetImpl>(apply(base, c, false, 0), c); });
    struct Variant {
      const char* suffix;
      const char* what;
      bool se;
      std::vector<int64_t> eca;
    };
    for (const Variant& v :
         {Variant{"", "", false, {}}, Variant{"_eca", " + ECA (k 5,5,5,7)", false, {5, 5, 5, 7}},
          Variant{"_se", " + SE (r 16)", true, {}}}) {
      auto o = base;
      o.se(v.se).eca_kernels(v.eca).zero_init_residual(true);
      add(fmt::format("rla_{}{}", d.name, v.suffix), "imagenet",
          fmt::format("RLA-{}{}, k=32 (official layout)", d.name, v.what), true,
          [o](const ModelConfig& c) { return finish<ResNetImpl>(apply(o, c, true, kImageNetK), c); });
    }
  }

  // ---- MobileNetV2
  add("mobilenet_v2", "imagenet", "MobileNetV2 (torchvision layout)", false, [](const ModelConfig& c) {
    return finish<MobileNetV2Impl>(apply(MobileNetV2Options(), c, false, 0), c);
  });
  for (int64_t k : {6, 12, 24, 32}) {
    for (bool ds : {false, true}) {
      for (bool eca : {false, true}) {
        auto o = MobileNetV2Options().depthwise_recurrent(ds).eca(eca);
        add(fmt::format("{}rla_mobilenetv2_k{}{}", ds ? "ds" : "", k, eca ? "_eca" : ""), "imagenet",
            fmt::format("RLA-MobileNetV2, k={}, {} recurrent conv{}", k, ds ? "depthwise" : "full 3x3",
                        eca ? " + ECA" : ""),
            true, [o, k](const ModelConfig& c) { return finish<MobileNetV2Impl>(apply(o, c, true, k), c); });
      }
    }
  }

  // ---- CIFAR-style ResNets: basic 6n+2, bottleneck 9n+2
  struct Cifar {
    int64_t depth, n;
    bool bottleneck;
  };
  const std::vector<Cifar> cifar = {{20, 3, false},   {32, 5, false}, {44, 7, false}, {56, 9, false},
                                    {110, 18, false}, {29, 3, true},  {47, 5, true},  {164, 18, true}};
  for (const auto& m : cifar) {
    auto base = ResNetOptions()
                    .bottleneck(m.bottleneck)
                    .layers({m.n, m.n, m.n})
                    .planes({16, 32, 64})
                    .cifar_stem(true)
                    .num_classes(10);
    const char* kind = m.bottleneck ? "bottleneck" : "basic-block";
    add(fmt::format("resnet{}", m.depth), "cifar", fmt::format("CIFAR ResNet-{} ({})", m.depth, kind), false,
        [base](const ModelConfig& c) { return finish<ResNetImpl>(apply(base, c, false, 0), c); });
    for (bool shared : {false, true}) {
      auto o = base;
      o.shared(shared).zero_init_residual(true).state_from_output(false);
      add(fmt::format("rla_resnet{}{}", m.depth, shared ? "_s" : ""), "cifar",
          fmt::format("CIFAR RLA-ResNet-{} ({}), k=12{}", m.depth, kind,
                      shared ? ", blocks share weights within a stage" : ""),
          true, [o](const ModelConfig& c) { return finish<ResNetImpl>(apply(o, c, true, kCifarK), c); });
    }
  }

  // ---- CIFAR-style DenseNets
  const auto d40 = DenseNetOptions().growth(12).layers({12, 12, 12}).init_features(16);
  const auto bc100 =
      DenseNetOptions().growth(12).layers({16, 16, 16}).bottleneck(true).compression(0.5).init_features(24);
  add("densenet40", "cifar", "DenseNet-40 (growth 12)", false,
      [d40](const ModelConfig& c) { return finish<DenseNetImpl>(apply(d40, c, false, 0), c); });
  add("densenet_bc100", "cifar", "DenseNet-BC-100 (growth 12, compression 0.5)", false,
      [bc100](const ModelConfig& c) { return finish<DenseNetImpl>(apply(bc100, c, false, 0), c); });
  add("rla_densenet40", "cifar", "RLA-DenseNet-40, k=12", true,
      [d40](const ModelConfig& c) { return finish<DenseNetImpl>(apply(d40, c, true, kCifarK), c); });
  add("rla_densenet_bc100", "cifar", "RLA-DenseNet-BC-100, k=12", true,
      [bc100](const ModelConfig& c) { return finish<DenseNetImpl>(apply(bc100, c, true, kCifarK), c); });
  return r;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::vector<int64_t> ModelEntry::default_input() const {
  return family == "imagenet" ? std::vector<int64_t>{3, 224, 224} : std::vector<int64_t>{3, 32, 32};
}

const std::vector<ModelEntry>& model_registry() {
  static const std::vector<ModelEntry> registry = build_registry();
  return registry;
}

std::vector<std::string> close_model_names(const std::string& name, size_t max) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& e : model_registry()) scored.emplace_back(edit_distance(name, e.name), e.name);
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < max; ++i) {
    if (scored[i].first <= std::max<size_t>(3, name.size() / 2)) out.push_back(scored[i].second);
  }
  return out;
}

const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : model_registry())
    if (e.name == name) return e;
  auto close = close_model_names(name);
  std::string hint =
      close.empty() ? " (see `rla list`)" : fmt::format("; did you mean {}?", fmt::join(close, ", "));
  throw UnknownModelError(fmt::format("unknown model '{}'{}", name, hint));
}

Network create_model(const std::string& name, const ModelConfig& config) {
  return find_model(name).build(config);
}

}  // namespace rla::models
