#include "rla/distributed/data_parallel.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <atomic>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include "rla/util/field_error.h"

namespace rla::distributed {
namespace {

// A stop signal this rank received, sent to every rank with the next step's gradients.
std::atomic<bool> g_pending_stop{false};

void defer_stop() {
  g_pending_stop = true;
}

using Clock = std::chrono::steady_clock;

/// Broadcasts rank 0's values of `tensors` in place: one flat message per dtype.
void broadcast_flat(ProcessGroup& pg, const std::vector<torch::Tensor>& tensors, const char* what) {
  torch::NoGradGuard no_grad;
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : group) flat_parts.push_back(t.detach().reshape({-1}));
    std::vector<torch::Tensor> msg = {torch::cat(flat_parts)};
    pg.broadcast(msg, /*root=*/0, what);
    int64_t off = 0;
    for (auto& t : group) {
      t.copy_(msg[0].narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  }
}

std::vector<torch::Tensor> buffers_of(torch::nn::Module* m) {
  std::vector<torch::Tensor> out;
  if (m) {
    for (const auto& b : m->buffers(/*recurse=*/true)) out.push_back(b);
  }
  return out;
}

struct Bucket {
  torch::Tensor flat;  ///< [numel (+1 stop flag in the last bucket)]
  std::vector<size_t> params;
  int64_t missing = 0;  ///< gradients still to arrive this step
  c10::intrusive_ptr<c10d::Work> work;
};

/// The gradient synchroniser shared by the hooks of one training run.
struct Sync {
  ProcessGroup* pg = nullptr;
  DataParallelOptions opt;
  std::vector<torch::Tensor> params;
  std::vector<Bucket> buckets;  ///< bucket 0 holds the last parameters (their gradients come first)
  std::vector<size_t> bucket_of;
  std::vector<int64_t> offset_of;
  std::vector<char> ready;
  size_t next_launch = 0;
  std::vector<torch::Tensor> buffers;

  void build(std::vector<torch::Tensor> ps) {
    params = std::move(ps);
    TORCH_CHECK(!params.empty(), "data parallel: no parameters to synchronise");
    const auto type = params.front().scalar_type();
    const auto cap = static_cast<int64_t>(opt.bucket_mb * 1024 * 1024);
    bucket_of.assign(params.size(), 0);
    offset_of.assign(params.size(), 0);
    ready.assign(params.size(), 0);
    std::vector<std::vector<size_t>> groups(1);
    int64_t bytes = 0;
    for (size_t k = params.size(); k-- > 0;) {
      TORCH_CHECK(params[k].scalar_type() == type, "data parallel: parameters of mixed dtypes (", type,
                  " and ", params[k].scalar_type(), ") are not supported");
      const int64_t b = params[k].numel() * static_cast<int64_t>(params[k].element_size());
      if (!groups.back().empty() && bytes + b > cap) groups.emplace_back(), bytes = 0;
      groups.back().push_back(k);
      bytes += b;
    }
    buckets.resize(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      int64_t off = 0;
      for (size_t k : groups[i]) bucket_of[k] = i, offset_of[k] = off, off += params[k].numel();
      const int64_t extra = i + 1 == groups.size() ? 1 : 0;  // the stop flag rides on the last one
      buckets[i].flat = torch::zeros({off + extra}, params.front().options().requires_grad(false));
      buckets[i].params = groups[i];
      buckets[i].missing = static_cast<int64_t>(groups[i].size());
    }
  }

  void on_grad(size_t k, const torch::Tensor& g) {
    TORCH_CHECK(!ready[k], "data parallel: parameter ", k, " received two gradients in one backward");
    auto& b = buckets[bucket_of[k]];
    b.flat.narrow(0, offset_of[k], params[k].numel()).copy_(g.reshape({-1}));
    ready[k] = 1;
    if (--b.missing == 0) launch_ready();
  }

  void launch(Bucket& b, bool last) {
    if (last) b.flat[b.flat.numel() - 1].fill_(g_pending_stop.exchange(false) ? 1.0 : 0.0);
    std::vector<torch::Tensor> msg = {b.flat};
    try {
      b.work = pg->all_reduce_sum_async(msg);
    } catch (const std::exception& e) {
      throw std::runtime_error(
          fmt::format("rank {}: starting a gradient all-reduce failed: {}", pg->rank(), e.what()));
    }
  }

  // Buckets start strictly in order, so that every rank issues the same sequence of collectives.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].missing == 0) {
      launch(buckets[next_launch], next_launch + 1 == buckets.size());
      ++next_launch;
    }
  }

  void after_backward(const std::vector<torch::Tensor>& ps) {
    TORCH_CHECK(ps.size() == params.size(), "data parallel: the trainer steps ", ps.size(),
                " parameters but ", params.size(), " were bucketed");
    torch::NoGradGuard no_grad;
    // Gradients that no hook delivered (unused parameters, or overlap off) are taken now.
    for (size_t k = 0; k < params.size(); ++k) {
      if (ready[k]) continue;
      auto slice = buckets[bucket_of[k]].flat.narrow(0, offset_of[k], params[k].numel());
      const auto& g = params[k].grad();
      g.defined() ? slice.copy_(g.reshape({-1})) : slice.zero_();
      ready[k] = 1;
      --buckets[bucket_of[k]].missing;
    }
    launch_ready();
    const double inv = 1.0 / static_cast<double>(pg->size());
    for (auto& b : buckets) {
      TORCH_CHECK(b.work, "data parallel: a gradient bucket was never started");
      pg->wait(b.work, "gradient all-reduce");
      b.work.reset();
      b.flat.mul_(inv);
      b.missing = static_cast<int64_t>(b.params.size());
    }
    if (buckets.back().flat[buckets.back().flat.numel() - 1].item<double>() > 0) engine::request_stop();
    for (size_t k = 0; k < params.size(); ++k) {
      auto avg =
          buckets[bucket_of[k]].flat.narrow(0, offset_of[k], params[k].numel()).view(params[k].sizes());
      auto& g = params[k].mutable_grad();
      if (g.defined()) {
        g.copy_(avg);
      } else {
        g = avg.clone();
      }
      ready[k] = 0;
    }
    next_launch = 0;
  }
};

// What the optimiser updates: every parameter that still requires a gradient (the trainer has
// frozen the backbone by then, when it trains exit heads post hoc).
std::vector<torch::Tensor> trained_parameters(models::NetworkImpl& net, torch::nn::Module* extra) {
  std::vector<torch::Tensor> ps;
  for (auto& p : models::unique_parameters(net))
    if (p.requires_grad()) ps.push_back(p);
  if (extra) {
    for (auto& p : models::unique_parameters(*extra))
      if (p.requires_grad()) ps.push_back(p);
  }
  return ps;
}

}  // namespace

engine::TrainHooks make_data_parallel_hooks(ProcessGroup& pg, engine::TrainHooks base,
                                            DataParallelOptions options) {
  if (!(options.bucket_mb > 0))
    throw util::FieldError("bucket_mb", fmt::format("bucket_mb must be positive, got {}", options.bucket_mb));
  auto sync = std::make_shared<Sync>();
  sync->pg = &pg;
  sync->opt = options;
  auto stats = options.stats ? options.stats : std::make_shared<SyncStats>();
  engine::TrainHooks h = base;
  h.rank = pg.rank();
  h.world_size = pg.size();
  h.on_ready = [sync, stats, prev = base.on_ready](models::NetworkImpl& net, torch::nn::Module* extra) {
    if (prev) prev(net, extra);
    std::vector<torch::Tensor> state = models::unique_parameters(net);
    if (extra) {
      for (auto& p : models::unique_parameters(*extra)) state.push_back(p);
    }
    sync->buffers = buffers_of(&net);
    for (auto& b : buffers_of(extra)) sync->buffers.push_back(b);
    state.insert(state.end(), sync->buffers.begin(), sync->buffers.end());
    broadcast_flat(*sync->pg, state, "broadcasting rank 0's parameters and buffers");
    sync->build(trained_parameters(net, extra));
    if (sync->opt.overlap) {
      std::weak_ptr<Sync> weak = sync;
      for (size_t k = 0; k < sync->params.size(); ++k) {
        sync->params[k].register_hook([weak, k](const torch::Tensor& g) {
          if (auto s = weak.lock()) s->on_grad(k, g);
        });
      }
    }
    stats->model = net.shared_from_this();
    stats->extra = extra ? extra->shared_from_this() : nullptr;
    stats->buckets = static_cast<int64_t>(sync->buckets.size());
    stats->grad_numel = 0;
    for (const auto& p : sync->params) stats->grad_numel += p.numel();
  };
  h.after_backward = [sync, stats, prev = base.after_backward](const std::vector<torch::Tensor>& ps) {
    if (prev) prev(ps);
    const auto t0 = Clock::now();
    sync->after_backward(ps);
    stats->sync_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    ++stats->steps;
  };
  h.reduce_meter = [sync, prev = base.reduce_meter](engine::ClassificationMeter& meter) {
    if (prev) prev(meter);
    std::vector<torch::Tensor> msg = {meter.to_tensor()};
    sync->pg->all_reduce_sum(msg, "reducing metrics");
    meter.from_tensor(msg[0]);
  };
  h.all_ranks_ok = [sync, prev = base.all_ranks_ok](bool ok) {
    if (prev) ok = prev(ok) && ok;
    std::vector<torch::Tensor> msg = {torch::full({1}, ok ? 1.0 : 0.0, torch::kDouble)};
    sync->pg->all_reduce_sum(msg, "checking that every rank can start");
    return msg[0].item<double>() == static_cast<double>(sync->pg->size());
  };
  // Every rank evaluates the network rank 0 checkpoints: its BatchNorm statistics (the model's
  // or the weight average's) come from rank 0.
  h.before_evaluation = [sync, prev = base.before_evaluation](models::NetworkImpl& net) {
    if (prev) prev(net);
    const auto buffers = buffers_of(&net);
    if (!buffers.empty())
      broadcast_flat(*sync->pg, buffers, "broadcasting rank 0's buffers before evaluation");
  };
  return h;
}

void install_coordinated_stop() {
  g_pending_stop = false;
  engine::install_stop_signals(&defer_stop);
}

double parameter_fingerprint(const torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  double fp = 0;
  int64_t pos = 0;
  for (const auto& p : models::unique_parameters(module)) {
    auto v = p.detach().reshape({-1}).to(torch::kDouble);
    auto w = torch::arange(pos + 1, pos + 1 + v.numel(), v.options());
    fp += (v * w).sum().item<double>();
    pos += v.numel();
  }
  return fp;
}

std::string finish_data_parallel(ProcessGroup& pg, const SyncStats& stats) {
  const double fp = (stats.model ? parameter_fingerprint(*stats.model) : 0.0) +
                    (stats.extra ? parameter_fingerprint(*stats.extra) : 0.0);
  std::vector<torch::Tensor> msg = {torch::full({1}, fp, torch::kDouble)};
  pg.broadcast(msg, /*root=*/0, "comparing parameters across ranks");
  const double fp0 = msg[0].item<double>();
  if (fp0 != fp)
    throw std::runtime_error(
        fmt::format("rank {}: parameters differ from rank 0's after training (fingerprint "
                    "{:.17g}, rank 0 {:.17g})",
                    pg.rank(), fp, fp0));
  const double ms = stats.steps > 0 ? 1000.0 * stats.sync_seconds / static_cast<double>(stats.steps) : 0.0;
  return fmt::format(
      "rank {}/{}: {} steps, {} gradient bucket(s) of {:.2f} MB in all, all-reduce {:.2f} ms/step "
      "(blocking time), parameter fingerprint {:.17g}",
      pg.rank(), pg.size(), stats.steps, stats.buckets, static_cast<double>(stats.grad_numel) * 4.0 / 1e6, ms,
      fp);
}

std::unique_ptr<DataParallelRun> start_data_parallel_from_env(double timeout_s, DataParallelOptions options,
                                                              engine::TrainHooks& hooks) {
  if (timeout_s <= 0 && !world_size_from_env_above_one()) return nullptr;
  auto run = std::make_unique<DataParallelRun>(config_from_env(timeout_s > 0 ? timeout_s : 300.0));
  options.stats = run->stats;
  hooks = make_data_parallel_hooks(run->group, hooks, options);
  install_coordinated_stop();
  return run;
}

}  // namespace rla::distributed
