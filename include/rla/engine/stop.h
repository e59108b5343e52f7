#pragma once
// Stopping a running train() cleanly: a request it honours after the current step (it then writes
// a resumable last.ckpt and returns with TrainResult::stopped_early), and the signals that make
// the request: SIGINT (Ctrl-C), SIGTERM (a batch scheduler, `kill`) and SIGHUP (a closed terminal).

namespace rla::engine {

/// Asks a running train() to finish the current step, save a resumable last.ckpt and return
/// (TrainResult::stopped_early). Async-signal-safe.
void request_stop();
bool stop_requested();

/// Makes SIGINT, SIGTERM and SIGHUP stop training as request_stop() does: the first of them
/// calls `on_stop` (request_stop by default; data-parallel runs pass one that shares the request
/// with every rank at the next gradient sync, distributed/data_parallel.h). After that a SIGINT
/// ends the process at once (the default action: a second Ctrl-C), while further SIGTERMs and
/// SIGHUPs are ignored (a batch scheduler may send one to every process of a job).
void install_stop_signals(void (*on_stop)() = &request_stop);
/// The signal that asked for the stop (SIGINT, SIGTERM or SIGHUP) since install_stop_signals,
/// 0 when none did.
int stop_signal();
/// Gives the three signals their default actions back.
void restore_stop_signals();

}  // namespace rla::engine
