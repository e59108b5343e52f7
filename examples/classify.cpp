// Loads a trained model (an rla run folder or checkpoint), classifies one PNG or JPEG and prints
// the five most likely classes: the library as a C++ user calls it (README, "As a library").
#include <rla/inference/load.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: classify RUN_OR_CHECKPOINT IMAGE\n");
    return 2;
  }
  try {
    const auto model = rla::inference::load_model(argv[1]);  // the fast path unless asked otherwise
    const auto image = rla::io::load_image_input(argv[2], model.input);
    const auto logits = model.forward(image)[0];
    for (const auto& p : rla::io::top_k(logits, 5, model.class_names))
      std::printf("%6.2f%%  %3lld  %s\n", 100.0 * p.probability, static_cast<long long>(p.index),
                  p.label.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
  return 0;
}
