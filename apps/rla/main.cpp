// rla: Recurrent Layer Aggregation networks from the command line. This file only wires the
// subcommands together and maps errors to one line and a non-zero exit code (a field the library
// names spelled as its flag, apps/rla/flags.h).
#include <torch/torch.h>

#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "commands.h"
#include "flags.h"
#include "rla/models/registry.h"
#include "rla/util/memory.h"
#include "rla/util/threads.h"

int main(int argc, char** argv) {
  rla::util::prefer_passive_omp_wait(argv);  // OMP_WAIT_POLICY=passive unless set (util/threads.h)
  rla::util::keep_freed_memory();            // large activations stay mapped (util/memory.h)
  CLI::App app{
      "rla — Recurrent Layer Aggregation networks (RLA-Net, NeurIPS 2021): model zoo, "
      "summaries, training and evaluation"};
  app.require_subcommand(1);
  // Bad usage gets one line, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("rla: error: ") + e.what() + " (see --help)\n";
  });
  int threads = 0;
  // Bounded: an OpenMP team of tens of thousands of threads takes minutes to start.
  app.add_option("--threads", threads, "Intra-op threads (default: all cores)")->check(CLI::Range(0, 1024));

  std::map<std::string, rla::app::Runner> runners;
  for (const auto& c :
       {rla::app::add_list_command(app), rla::app::add_summary_command(app), rla::app::add_train_command(app),
        rla::app::add_launch_command(app), rla::app::add_eval_command(app), rla::app::add_report_command(app),
        rla::app::add_convert_command(app), rla::app::add_infer_command(app),
        rla::app::add_predict_command(app), rla::app::add_exits_command(app),
        rla::app::add_visualize_command(app), rla::app::add_export_command(app),
        rla::app::add_quantize_command(app), rla::app::add_data_command(app)})
    runners[c.app->get_name()] = c.run;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  torch::set_num_threads(threads > 0 ? threads
                                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  for (auto* sub : app.get_subcommands()) {  // the one the user named
    const std::string name = sub->get_name();
    try {
      return runners.at(name)();
    } catch (const rla::util::FieldError& e) {  // the library names the field; the user typed a flag
      std::cerr << "rla " << name << ": error: " << rla::app::message_with_flags(e) << "\n";
      return 1;
    } catch (const rla::models::UnknownModelError& e) {
      std::cerr << "rla " << name << ": error: " << e.what() << " (see `rla list`)\n";
      return 1;
    } catch (const c10::Error& e) {
      std::cerr << "rla " << name << ": error: " << e.what_without_backtrace() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "rla " << name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  return 1;
}
