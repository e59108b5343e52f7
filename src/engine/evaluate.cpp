#include "rla/engine/evaluate.h"

#include <fmt/format.h>

#include "rla/engine/progress.h"

namespace rla::engine {

ClassificationMeter evaluate(models::NetworkImpl& net, data::DataLoader& loader, int64_t num_classes,
                             bool show_progress, bool keep_predictions) {
  net.eval();
  const auto params = net.parameters();
  const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  return evaluate([&net, device](const torch::Tensor& x) { return net.forward(x.to(device)); }, loader,
                  num_classes, show_progress, keep_predictions);
}

ClassificationMeter evaluate(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                             data::DataLoader& loader, int64_t num_classes, bool show_progress,
                             bool keep_predictions) {
  ClassificationMeter meter(num_classes);
  meter.keep_predictions(keep_predictions);
  torch::NoGradGuard no_grad;
  loader.start_epoch(0);
  Progress progress("  eval", loader.batches_per_epoch());
  while (auto batch = loader.next()) {
    auto logits = forward(batch->images);
    const double loss =
        torch::nn::functional::cross_entropy(logits, batch->labels.to(logits.device())).item<double>();
    meter.update(logits, batch->labels, loss);
    if (show_progress) progress.step(batch->labels.size(0));
  }
  if (show_progress) progress.finish(fmt::format("top-1 {:.2f}%", meter.top1()));
  return meter;
}

}  // namespace rla::engine
