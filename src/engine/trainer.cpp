#include "rla/engine/trainer.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "rla/analysis/plot.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/progress.h"
#include "rla/io/checkpoint.h"
#include "rla/models/registry.h"
#include "rla/util/file.h"
#include "rla/util/threads.h"

namespace rla::engine {
namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_stop{false};

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

}  // namespace

void request_stop() {
  g_stop = true;
}
bool stop_requested() {
  return g_stop.load();
}
void clear_stop_request() {
  g_stop = false;
}

ClassificationMeter evaluate(models::NetworkImpl& net, data::DataLoader& loader, int64_t num_classes,
                             bool show_progress) {
  net.eval();
  return evaluate([&net](const torch::Tensor& x) { return net.forward(x); }, loader, num_classes,
                  show_progress);
}

ClassificationMeter evaluate(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                             data::DataLoader& loader, int64_t num_classes, bool show_progress) {
  ClassificationMeter meter(num_classes);
  torch::NoGradGuard no_grad;
  loader.start_epoch(0);
  Progress progress("  eval", loader.batches_per_epoch());
  while (auto batch = loader.next()) {
    auto logits = forward(batch->images);
    const double loss = torch::nn::functional::cross_entropy(logits, batch->labels).item<double>();
    meter.update(logits, batch->labels, loss);
    if (show_progress) progress.step(batch->labels.size(0));
  }
  if (show_progress) progress.finish(fmt::format("top-1 {:.2f}%", meter.top1()));
  return meter;
}

void save_training_curves(const std::string& path, const std::vector<EpochMetrics>& history,
                          const std::string& title, const std::string& held_out_name) {
  analysis::Chart loss{title + ": loss", "epoch", "cross-entropy loss", {}, false};
  analysis::Chart acc{title + ": top-1 accuracy", "epoch", "top-1 accuracy (%)", {}, false};
  analysis::Series tl{"train", {}, {}}, vl{held_out_name, {}, {}}, ta{"train", {}, {}},
      va{held_out_name, {}, {}};
  for (const auto& m : history) {
    const auto e = static_cast<double>(m.epoch);
    tl.x.push_back(e), tl.y.push_back(m.train_loss), vl.x.push_back(e), vl.y.push_back(m.val_loss);
    ta.x.push_back(e), ta.y.push_back(m.train_top1), va.x.push_back(e), va.y.push_back(m.val_top1);
  }
  loss.series = {tl, vl};
  acc.series = {ta, va};
  analysis::save_charts_png(path, {loss, acc}, 2);
}

TrainResult train(const TrainConfig& config, const TrainHooks& hooks) {
  TrainConfig c = config;
  const bool lead = hooks.rank == 0;
  if (!lead) c.quiet = true;
  validate(c.schedule);
  TORCH_CHECK(c.epochs > 0, "--epochs must be positive, got ", c.epochs);
  TORCH_CHECK(c.batch_size > 0, "--batch-size must be positive, got ", c.batch_size);
  c.schedule.epochs = c.epochs;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  util::set_intra_op_threads(c.threads > 0 ? c.threads : cores);  // and OpenBLAS to 1 (util/threads.h)
  if (c.out_dir.empty()) c.out_dir = fmt::format("runs/{}-{}", c.model, c.data.dataset);
  fs::create_directories(c.out_dir);

  c.data.seed = c.seed;
  auto data = data::open_data(c.data);
  torch::manual_seed(c.seed);
  c.model_config.num_classes = data.train->num_classes();
  c.model_config.in_channels = data.input_shape[0];
  c.input_shape = data.input_shape;
  c.model_config = models::resolve_config(models::find_model(c.model), c.model_config);
  auto net = build_model(c);
  if (!c.init_checkpoint.empty()) load_checkpoint(c.init_checkpoint, *net, nullptr);
  std::shared_ptr<torch::nn::Module> extra = hooks.make_extra ? hooks.make_extra(*net) : nullptr;
  std::vector<torch::Tensor> params;
  if (!hooks.freeze_model) params = models::unique_parameters(*net);
  if (extra) {
    for (auto& p : models::unique_parameters(*extra)) params.push_back(p);
  }
  if (hooks.freeze_model) {
    for (auto& p : net->parameters()) p.set_requires_grad(false);
  }
  TORCH_CHECK(!params.empty(), "nothing to train: the model is frozen and there is no extra module");
  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(c.schedule.base_lr)
                                          .momentum(c.momentum)
                                          .nesterov(c.nesterov && c.momentum > 0)
                                          .weight_decay(c.weight_decay));

  TrainState state;
  TrainResult result;
  result.run_dir = c.out_dir;
  const std::string metrics_file = metrics_path(c.out_dir);
  const auto config_json = to_json(c);
  state.config_json = config_json.dump();
  if (c.resume && fs::exists(last_checkpoint_path(c.out_dir))) {
    state = load_checkpoint(last_checkpoint_path(c.out_dir), *net, &optimizer, extra.get());
    state.config_json = config_json.dump();
    // Drop lines of epochs after the checkpoint (a crash between the two writes).
    for (const auto& m : read_metrics(c.out_dir))
      if (m.epoch <= state.epochs_done) result.history.push_back(m);
    std::string kept;
    for (const auto& m : result.history) kept += to_json(m).dump() + "\n";
    if (lead) util::write_file_atomic(metrics_file, kept);
    if (!c.quiet)
      fmt::print(stderr, "resuming {} after epoch {}{}\n", c.out_dir, state.epochs_done,
                 state.next_batch ? fmt::format(" + {} batches", state.next_batch) : "");
  } else if (lead) {
    util::write_file_atomic(metrics_file, "");
    fs::remove(result_path(c.out_dir));
  }
  if (hooks.on_ready) hooks.on_ready(*net, extra.get());
  // Evaluated after every epoch (and used to pick best.ckpt): the validation split when there
  // is one; the test set then waits for the end of the run.
  const auto held_out = data.val ? data.val : data.test;
  const std::string held_out_name = data.val ? "validation" : "test";
  if (lead) util::write_file_atomic(config_path(c.out_dir), config_json.dump(2) + "\n");
  if (!c.quiet) {
    fmt::print(stderr, "config {}\n", config_json.dump());
    fmt::print(stderr, "model {}: {} parameters | train {} | {} {} | {} threads\n", c.model,
               models::count_parameters(*net), data.train->description(), held_out_name,
               held_out->description(), torch::get_num_threads());
  }

  data::LoaderOptions lo;
  lo.batch_size = c.batch_size;
  lo.seed = c.seed;
  lo.workers = c.workers;
  lo.channels_last = c.channels_last;
  lo.drop_last =
      data.train->size() > static_cast<size_t>(c.batch_size) * static_cast<size_t>(hooks.world_size);
  lo.rank = hooks.rank;
  lo.world_size = hooks.world_size;
  data::DataLoader train_loader(data.train, data.train_transforms, lo);
  lo.shuffle = false;
  lo.drop_last = false;
  lo.pad_shards = false;  // every test image exactly once across ranks
  data::DataLoader held_out_loader(held_out, data.eval_transforms, lo);
  const size_t nb = train_loader.batches_per_epoch();
  const int64_t classes = data.train->num_classes();
  int64_t steps = 0;

  for (int64_t epoch = state.epochs_done; epoch < c.epochs; ++epoch) {
    torch::manual_seed(c.seed * 1000003 + static_cast<uint64_t>(epoch));
    ClassificationMeter meter(classes);
    const size_t first = static_cast<size_t>(state.next_batch);
    if (first > 0 && state.partial_meter.defined()) meter.from_tensor(state.partial_meter);
    train_loader.start_epoch(epoch, first);
    net->train(!hooks.freeze_model);
    if (extra) extra->train();
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, c.epochs), nb - std::min(first, nb));
    double lr = 0;
    size_t b = first;
    while (auto batch = train_loader.next()) {
      lr = lr_at(c.schedule, static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(nb));
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      torch::Tensor logits, loss;
      if (hooks.forward_loss) {
        std::tie(logits, loss) = hooks.forward_loss(*net, extra.get(), batch->images, batch->labels);
      } else {
        logits = net->forward(batch->images);
        loss = torch::nn::functional::cross_entropy(
            logits, batch->labels,
            torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.label_smoothing));
      }
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value)) {
        throw NonFiniteLoss(
            fmt::format("loss became {} at epoch {} batch {} (lr {:.4g}); stopping — the last good "
                        "checkpoint {} is kept (try a lower --lr)",
                        loss_value, epoch + 1, b + 1, lr, last_checkpoint_path(c.out_dir)));
      }
      optimizer.zero_grad();
      loss.backward();
      if (hooks.after_backward) hooks.after_backward(params);
      optimizer.step();
      meter.update(logits, batch->labels, loss_value);
      ++b;
      ++steps;
      if (!c.quiet)
        progress.step(batch->labels.size(0),
                      fmt::format("loss {:.4f} top-1 {:.2f}% lr {:.4f}", meter.loss(), meter.top1(), lr));
      if (stop_requested() || (c.max_steps > 0 && steps >= c.max_steps)) {
        state.next_batch = static_cast<int64_t>(b);
        state.partial_meter = meter.to_tensor();
        if (b >= nb) {  // stopped exactly at the end of the epoch: finish it normally below
          break;
        }
        state.epochs_done = epoch;
        if (lead) save_checkpoint(last_checkpoint_path(c.out_dir), *net, &optimizer, state, extra.get());
        if (!c.quiet) {
          progress.finish("stopped");
          fmt::print(stderr, "stopped at epoch {} batch {}/{}; checkpoint saved, continue with --resume\n",
                     epoch + 1, b, nb);
        }
        result.stopped_early = true;
        result.best_top1 = state.best_top1;
        return result;
      }
    }
    if (!c.quiet) progress.finish(fmt::format("loss {:.4f} top-1 {:.2f}%", meter.loss(), meter.top1()));
    const double train_seconds = progress.elapsed_seconds();
    if (hooks.reduce_meter) hooks.reduce_meter(meter);
    auto val = evaluate(*net, held_out_loader, classes);
    if (hooks.reduce_meter) hooks.reduce_meter(val);
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = lr;
    m.train_loss = meter.loss();
    m.train_top1 = meter.top1();
    m.train_top5 = meter.top5();
    m.val_loss = val.loss();
    m.val_top1 = val.top1();
    m.val_top5 = val.top5();
    m.seconds = progress.elapsed_seconds();
    m.train_img_per_s = train_seconds > 0 ? static_cast<double>(meter.count()) / train_seconds : 0;
    result.history.push_back(m);
    if (lead) {
      append_line(metrics_file, to_json(m).dump());
      if (analysis::png_charts_available())
        save_training_curves((fs::path(c.out_dir) / "training_curves.png").string(), result.history,
                             c.model + " on " + c.data.dataset, held_out_name);
    }
    if (!c.quiet)
      fmt::print(stderr,
                 "epoch {}/{}: train loss {:.4f} top-1 {:.2f}% | {} loss {:.4f} top-1 {:.2f}% top-5 "
                 "{:.2f}% | {:.0f} img/s\n",
                 m.epoch, c.epochs, m.train_loss, m.train_top1, held_out_name, m.val_loss, m.val_top1,
                 m.val_top5, m.train_img_per_s);
    state.epochs_done = epoch + 1;
    state.next_batch = 0;
    state.partial_meter = torch::Tensor();
    const bool best = m.val_top1 > state.best_top1;
    if (best) {
      state.best_top1 = m.val_top1;
      state.best_epoch = m.epoch;
    }
    if (lead) {
      save_checkpoint(last_checkpoint_path(c.out_dir), *net, &optimizer, state, extra.get());
      if (best) {
        save_checkpoint(best_checkpoint_path(c.out_dir), *net, nullptr, state, extra.get());
        // The same weights as a torch.save state_dict, for Python (torch.load(..., weights_only=True)).
        io::save_module((fs::path(c.out_dir) / "best_model.pt").string(), *net);
      }
    }
    if (stop_requested() || (c.max_steps > 0 && steps >= c.max_steps)) {
      result.stopped_early = epoch + 1 < c.epochs;
      break;
    }
  }
  result.best_top1 = state.best_top1;
  if (!result.stopped_early && !result.history.empty() && result.history.back().epoch == c.epochs) {
    // The finished run's final weights on the test set: evaluated once, never used to choose.
    const auto& last = result.history.back();
    RunResult r;
    r.epochs = last.epoch;
    if (data.val) {
      r.val_loss = last.val_loss, r.val_top1 = last.val_top1, r.val_top5 = last.val_top5;
      data::DataLoader test_loader(data.test, data.eval_transforms, lo);
      auto test = evaluate(*net, test_loader, classes);
      if (hooks.reduce_meter) hooks.reduce_meter(test);
      r.test_loss = test.loss(), r.test_top1 = test.top1(), r.test_top5 = test.top5();
    } else {
      r.test_loss = last.val_loss, r.test_top1 = last.val_top1, r.test_top5 = last.val_top5;
    }
    if (lead) util::write_file_atomic(result_path(c.out_dir), to_json(r).dump(2) + "\n");
    result.final = r;
  }
  return result;
}

}  // namespace rla::engine
