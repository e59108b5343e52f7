#include "rla/data/dataset.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace rla::data {

int64_t Dataset::label(size_t index) const {
  return get(index).label;
}

std::vector<std::string> Dataset::class_names() const {
  std::vector<std::string> names;
  for (int64_t i = 0; i < num_classes(); ++i) names.push_back(std::to_string(i));
  return names;
}

TensorDataset::TensorDataset(torch::Tensor images, torch::Tensor labels, int64_t num_classes,
                             std::string description, std::vector<std::string> class_names)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      num_classes_(num_classes),
      description_(std::move(description)),
      class_names_(std::move(class_names)) {
  TORCH_CHECK(images_.dim() == 4 && images_.scalar_type() == torch::kByte,
              "TensorDataset: images must be uint8 [N, C, H, W], got ", images_.sizes());
  TORCH_CHECK(labels_.dim() == 1 && labels_.size(0) == images_.size(0), "TensorDataset: ", images_.size(0),
              " images but ", labels_.numel(), " labels");
  labels_ = labels_.to(torch::kLong).contiguous();
  images_ = images_.contiguous();
}

Example TensorDataset::get(size_t index) const {
  TORCH_CHECK(index < size(), "index ", index, " out of range for ", size(), " examples");
  return {images_[static_cast<int64_t>(index)], labels_.data_ptr<int64_t>()[index]};
}

int64_t TensorDataset::label(size_t index) const {
  TORCH_CHECK(index < size(), "index ", index, " out of range for ", size(), " examples");
  return labels_.data_ptr<int64_t>()[index];
}

std::vector<std::string> TensorDataset::class_names() const {
  return class_names_.empty() ? Dataset::class_names() : class_names_;
}

namespace {
class Prefix : public Dataset {
 public:
  Prefix(DatasetPtr base, size_t n) : base_(std::move(base)), n_(n) {}
  size_t size() const override { return n_; }
  Example get(size_t i) const override { return base_->get(i); }
  int64_t label(size_t i) const override { return base_->label(i); }
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  std::string description() const override {
    return fmt::format("{} [first {} of {}]", base_->description(), n_, base_->size());
  }
  std::vector<std::string> class_names() const override { return base_->class_names(); }

 private:
  DatasetPtr base_;
  size_t n_;
};
class Subset : public Dataset {
 public:
  Subset(DatasetPtr base, std::vector<size_t> indices, std::string what)
      : base_(std::move(base)), indices_(std::move(indices)), what_(std::move(what)) {}
  size_t size() const override { return indices_.size(); }
  Example get(size_t i) const override { return base_->get(indices_.at(i)); }
  int64_t label(size_t i) const override { return base_->label(indices_.at(i)); }
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  std::string description() const override {
    return fmt::format("{} [{}: {} of {}]", base_->description(), what_, indices_.size(), base_->size());
  }
  std::vector<std::string> class_names() const override { return base_->class_names(); }

 private:
  DatasetPtr base_;
  std::vector<size_t> indices_;
  std::string what_;
};

}  // namespace

DatasetPtr take_first(DatasetPtr base, size_t n) {
  if (n == 0 || n >= base->size()) return base;
  return std::make_shared<Prefix>(std::move(base), n);
}

std::pair<DatasetPtr, DatasetPtr> stratified_split(const DatasetPtr& base, size_t held_out, uint64_t seed,
                                                   const std::string& held_out_name) {
  const size_t n = base->size();
  if (held_out == 0 || held_out >= n)
    throw std::invalid_argument(fmt::format("a {} split of {} needs 0 < size < {} (the training images)",
                                            held_out_name, held_out, n));
  const auto classes = static_cast<size_t>(base->num_classes());
  std::vector<std::vector<size_t>> by_class(classes);
  for (size_t i = 0; i < n; ++i) {
    const int64_t l = base->label(i);
    TORCH_CHECK(l >= 0 && static_cast<size_t>(l) < classes, "example ", i, " has label ", l, " outside [0, ",
                classes, ")");
    by_class[static_cast<size_t>(l)].push_back(i);
  }
  // Quotas: floor of the proportional share, then one more for the largest remainders.
  std::vector<size_t> quota(classes);
  std::vector<std::pair<double, size_t>> remainders;
  size_t given = 0;
  for (size_t c = 0; c < classes; ++c) {
    const double exact =
        static_cast<double>(held_out) * static_cast<double>(by_class[c].size()) / static_cast<double>(n);
    quota[c] = static_cast<size_t>(exact);
    given += quota[c];
    remainders.emplace_back(exact - static_cast<double>(quota[c]), c);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t r = 0; given < held_out && r < remainders.size(); ++r, ++given) ++quota[remainders[r].second];

  std::vector<char> is_held(n, 0);
  for (size_t c = 0; c < classes; ++c) {
    auto idx = by_class[c];
    std::mt19937_64 rng(seed * 1000003ULL + c);
    // Fisher-Yates with our own draws: std::shuffle's sequence differs between standard libraries.
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    for (size_t i = 0; i < quota[c]; ++i) is_held[idx[i]] = 1;
  }
  std::vector<size_t> rest, held;
  for (size_t i = 0; i < n; ++i) (is_held[i] ? held : rest).push_back(i);
  return {std::make_shared<Subset>(base, std::move(rest), "training part"),
          std::make_shared<Subset>(base, std::move(held), held_out_name + " split")};
}

}  // namespace rla::data
