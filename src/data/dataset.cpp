#include "rla/data/dataset.h"

#include <fmt/format.h>

namespace rla::data {

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

std::vector<std::string> TensorDataset::class_names() const {
  return class_names_.empty() ? Dataset::class_names() : class_names_;
}

namespace {
class Prefix : public Dataset {
 public:
  Prefix(DatasetPtr base, size_t n) : base_(std::move(base)), n_(n) {}
  size_t size() const override { return n_; }
  Example get(size_t i) const override { return base_->get(i); }
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
}  // namespace

DatasetPtr take_first(DatasetPtr base, size_t n) {
  if (n == 0 || n >= base->size()) return base;
  return std::make_shared<Prefix>(std::move(base), n);
}

}  // namespace rla::data
