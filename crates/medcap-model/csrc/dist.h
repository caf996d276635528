// What csrc/dist.cpp and csrc/dist_nccl.cpp share: the group a handle
// stands for, the exception guard of every entry point, and the NCCL
// backend's constructor (defined in dist_nccl.cpp when this build has
// NCCL).
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <exception>
#include <string>

namespace medcap_dist {

struct Group {
  // The backend of the group's device: NCCL for a GPU, else `cpu` itself.
  c10::intrusive_ptr<c10d::Backend> pg;
  // Gloo, always: CPU tensors (counts, flags, settings, byte strings) and
  // the barrier, with per-call timeouts NCCL's watchdog would not honour.
  c10::intrusive_ptr<c10d::Backend> cpu;
  c10::intrusive_ptr<c10d::Store> store;
  int rank;
  int world;
  std::chrono::milliseconds timeout;
  int checks = 0;
};

// A malloc'ed copy of `message`, freed by medcap_dist_free_error.
char *copy_message(const std::string &message);

// Runs `body`, turning any exception into a message; null on success.
template <typename F> char *guarded(F body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error &e) {
    return copy_message(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return copy_message(e.what());
  } catch (...) {
    return copy_message("unknown C++ exception");
  }
}

// An NCCL process group of `world` ranks over `store`, this one on
// cuda:`cuda_index`, with `timeout` for its collectives.
c10::intrusive_ptr<c10d::Backend>
nccl_backend(const c10::intrusive_ptr<c10d::Store> &store, int rank, int world,
             int cuda_index, std::chrono::milliseconds timeout);

} // namespace medcap_dist
