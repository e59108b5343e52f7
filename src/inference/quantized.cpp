// Post-training int8 quantization: QuantizedNetwork over the int8 graph (quantized_graph.h).
#include "rla/inference/quantized.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "quantized_graph.h"
#include "rla/util/field_error.h"

namespace rla::inference {

namespace {
void select_engine() {
  auto& ctx = at::globalContext();
  const auto engines = ctx.supportedQEngines();
  const auto has = [&engines](at::QEngine e) {
    return std::find(engines.begin(), engines.end(), e) != engines.end();
  };
  if (has(at::QEngine::ONEDNN))
    ctx.setQEngine(at::QEngine::ONEDNN);
  else if (has(at::QEngine::QNNPACK))
    ctx.setQEngine(at::QEngine::QNNPACK);
  else if (has(at::QEngine::FBGEMM))
    ctx.setQEngine(at::QEngine::FBGEMM);
  else
    throw std::runtime_error("this LibTorch has no quantized engine (oneDNN, QNNPACK or FBGEMM)");
}
}  // namespace

QuantizedNetwork::QuantizedNetwork(const models::NetworkImpl& net, std::vector<int64_t> input_shape) {
  select_engine();
  graph_ = std::make_unique<QuantizedGraph>(net, std::move(input_shape));
}
QuantizedNetwork::~QuantizedNetwork() = default;
QuantizedNetwork::QuantizedNetwork(QuantizedNetwork&&) noexcept = default;
QuantizedNetwork& QuantizedNetwork::operator=(QuantizedNetwork&&) noexcept = default;

torch::Tensor QuantizedNetwork::calibrate(const torch::Tensor& x) {
  auto logits = graph_->run(x, /*quantized=*/false);
  graph_->calibrated_ += x.size(0);
  return logits;
}
int64_t QuantizedNetwork::calibration_images() const {
  return graph_->calibrated_;
}
void QuantizedNetwork::finalize() {
  graph_->finalize();
}
bool QuantizedNetwork::finalized() const {
  return graph_->finalized_;
}

torch::Tensor QuantizedNetwork::forward(const torch::Tensor& x) {
  if (!graph_->finalized_) throw std::logic_error("int8 forward before finalize()");
  const auto& shape = graph_->input_shape_;  // [C, H, W] it was traced at
  if (x.dim() != 4 || (!shape.empty() && x.size(1) != shape[0]) || x.size(0) < 1 || x.size(2) < 1 ||
      x.size(3) < 1)
    throw std::invalid_argument(fmt::format("int8 model expects a non-empty input [N, {}, H, W], got [{}]",
                                            shape.empty() ? std::string("C") : std::to_string(shape[0]),
                                            fmt::join(x.sizes(), ", ")));
  try {
    return graph_->run(x, /*quantized=*/true);
  } catch (const c10::Error& e) {  // LibTorch's messages carry a stack trace: keep the message
    throw std::runtime_error(std::string("int8 forward: ") + e.what_without_backtrace());
  }
}

QuantizedNetwork::Counts QuantizedNetwork::counts() const {
  return graph_->counts();
}

QuantizedNetwork quantize(const models::NetworkImpl& net, const std::vector<int64_t>& input_shape,
                          data::DataLoader& loader, int64_t calibration_images) {
  const int64_t images = calibration_images;
  if (images < kMinCalibrationImages)
    throw util::FieldError("calibration_images",
                           fmt::format("calibration_images {}: calibration needs at least {} images", images,
                                       kMinCalibrationImages));
  if (static_cast<int64_t>(loader.samples_per_epoch()) < images)
    throw util::FieldError("calibration_images",
                           fmt::format("calibration_images {}: the calibration split has only {} images",
                                       images, loader.samples_per_epoch()));
  QuantizedNetwork q(net, input_shape);
  loader.start_epoch(0);
  while (q.calibration_images() < images) {
    auto batch = loader.next();
    if (!batch) break;
    const auto take = std::min<int64_t>(batch->images.size(0), images - q.calibration_images());
    q.calibrate(batch->images.narrow(0, 0, take));
  }
  q.finalize();
  return q;
}

std::string default_int8_path(const std::string& run_or_checkpoint) {
  namespace fs = std::filesystem;
  const fs::path p(run_or_checkpoint);
  return ((fs::is_directory(p) ? p : p.parent_path()) / "model.int8.pt").string();
}

std::string QuantizedNetwork::engine() {
  const auto e = at::globalContext().qEngine();
  return e == at::QEngine::ONEDNN ? "onednn" : e == at::QEngine::QNNPACK ? "qnnpack" : "fbgemm";
}

}  // namespace rla::inference
