#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "rla/deploy/export.h"
#include "rla/models/backbone.h"
#include "rla/util/file.h"

namespace rla::deploy {

std::shared_ptr<torch::jit::Graph> trace_inference_graph(const models::NetworkImpl& source,
                                                         const ExportOptions& options) {
  const auto& shape = options.input_shape;
  if (shape.size() != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1)
    throw std::invalid_argument(
        fmt::format("export needs an input shape C,H,W; got [{}]", fmt::join(shape, ",")));
  torch::NoGradGuard no_grad;  // folded weights are computed from parameters: without gradients
  auto net = source.copy();
  net->eval();
  if (options.fold_batchnorm)
    net->prepare_inference(
        models::InferenceOptions().portable(true).channels_last(false).split_concat(false));
  // The weights become constants of the graph, which must not require gradients.
  for (auto& p : net->parameters()) p.set_requires_grad(false);
  // Two images: a batch of one would let the trace mistake the batch size for a constant 1.
  const auto example = torch::rand({2, shape[0], shape[1], shape[2]});
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    graph = torch::jit::tracer::trace(
                {example},
                [&net, &options](torch::jit::Stack inputs) -> torch::jit::Stack {
                  const auto x = inputs.at(0).toTensor();
                  if (!options.features) return {net->forward(x)};
                  torch::jit::Stack out;
                  for (auto& f : models::forward_features(
                           *net, x, models::BackboneOptions().with_state(options.with_state)))
                    out.emplace_back(std::move(f));
                  return out;
                },
                [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false,
                /*force_outplace=*/false)
                .first->graph;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw std::runtime_error("trace failed: " + what.substr(0, what.find('\n')));
  }
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

std::vector<std::string> export_output_names(const torch::jit::Graph& graph, const ExportOptions& options) {
  if (!options.features) return {kOnnxOutputName};
  std::vector<std::string> names;
  const auto outputs = graph.outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (options.with_state && i + 1 == outputs.size()) {
      names.push_back("h");
      continue;
    }
    const auto sizes = outputs[i]->type()->expectRef<c10::TensorType>().sizes().concrete_sizes();
    TORCH_CHECK(sizes && sizes->size() == 4, "export: feature ", i, " has no traced [N, C, H, W] shape");
    const double stride = static_cast<double>(options.input_shape[1]) / static_cast<double>((*sizes)[2]);
    names.push_back(fmt::format("C{}", std::lround(std::log2(stride))));
  }
  return names;
}

void export_torchscript(const models::NetworkImpl& net, const std::string& path,
                        const ExportOptions& options) {
  auto graph = trace_inference_graph(net, options);
  if (graph->outputs().size() > 1) {  // features: a method returns one value, so a tuple of them
    std::vector<torch::jit::Value*> outputs(graph->outputs().begin(), graph->outputs().end());
    while (!graph->outputs().empty()) graph->eraseOutput(graph->outputs().size() - 1);
    graph->registerOutput(graph->insertNode(graph->createTuple(outputs))->output());
  }
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module module(c10::QualifiedName("__torch__.rla.ExportedNetwork"), unit);
  graph->insertInput(0, "self")->setType(module._ivalue()->type());
  auto* forward = unit->create_function(c10::QualifiedName(*module.type()->name(), "forward"), graph);
  module.type()->addMethod(forward);
  std::ostringstream bytes;
  module.save(bytes);
  util::write_file_atomic(path, bytes.str());
}

}  // namespace rla::deploy
