#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "rla/io/export.h"
#include "rla/util/file.h"

namespace rla::io {

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
                [&net](torch::jit::Stack inputs) -> torch::jit::Stack {
                  return {net->forward(inputs.at(0).toTensor())};
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

void export_torchscript(const models::NetworkImpl& net, const std::string& path,
                        const ExportOptions& options) {
  auto graph = trace_inference_graph(net, options);
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module module(c10::QualifiedName("__torch__.rla.ExportedNetwork"), unit);
  graph->insertInput(0, "self")->setType(module._ivalue()->type());
  auto* forward = unit->create_function(c10::QualifiedName(*module.type()->name(), "forward"), graph);
  module.type()->addMethod(forward);
  std::ostringstream bytes;
  module.save(bytes);
  util::write_file_atomic(path, bytes.str());
}

}  // namespace rla::io
