// PyTorch's distributed engine (c10d) as libtorch ships it, which tch 0.24
// does not bind: a TCPStore for the rendezvous, a Gloo process group (CPU
// tensors) or, when built against a CUDA libtorch, an NCCL one (CUDA
// tensors, dist_nccl.cpp) over it, and the collectives data parallelism
// needs (all-reduce, broadcast, all-gather, barrier). The same code
// torch.distributed runs; nothing of the communication is medcap's own.
//
// Every entry point catches every C++ exception (c10::Error among them) and
// returns it as a message the caller frees with medcap_dist_free_error; a
// null return is success. No exception crosses into Rust.

#include "dist.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace medcap_dist {

char *copy_message(const std::string &message) {
  char *out = static_cast<char *>(std::malloc(message.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, message.c_str(), message.size() + 1);
  }
  return out;
}

} // namespace medcap_dist

using medcap_dist::Group;
using medcap_dist::guarded;

namespace {

void wait(const c10::intrusive_ptr<c10d::Work> &work, const Group &group) {
  work->wait(group.timeout);
}

// The backend for `tensor`: the device's for a CUDA tensor, Gloo for a
// CPU one.
c10d::Backend &backend(const Group &group, const at::Tensor &tensor) {
  return tensor.is_cuda() ? *group.pg : *group.cpu;
}

} // namespace

extern "C" {

void medcap_dist_free_error(char *message) { std::free(message); }

// Joins the group of `world` processes as `rank`: the TCPStore at
// host:port (served by this process when `serve`, else a client of the
// server already there: rank 0, or torchrun's agent), keys under `prefix`,
// and over it a Gloo process group whose device binds `bind_host` (the
// default device when empty) when `cuda_index` < 0, else an NCCL one on
// cuda:`cuda_index`. `timeout_ms` bounds the rendezvous and every
// collective.
char *medcap_dist_init(const char *host, int port, int serve, int rank,
                       int world, const char *prefix, const char *bind_host,
                       int cuda_index, int64_t timeout_ms, void **out) {
  return guarded([&] {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = serve != 0;
    options.numWorkers = world;
    options.waitWorkers = false;
    options.multiTenant = true;
    options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    // Gloo connects every pair of ranks now, so joining waits (up to the
    // timeout) for all of them, whichever backend the device gets.
    auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
    std::string bind(bind_host);
    gloo->devices.push_back(
        bind.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                     : c10d::ProcessGroupGloo::createDeviceForHostname(bind));
    c10::intrusive_ptr<c10d::Backend> cpu =
        c10::make_intrusive<c10d::ProcessGroupGloo>(
            c10::make_intrusive<c10d::PrefixStore>("gloo", store), rank, world,
            gloo);
    c10::intrusive_ptr<c10d::Backend> pg = cpu;
    if (cuda_index >= 0) {
      pg = medcap_dist::nccl_backend(
          c10::make_intrusive<c10d::PrefixStore>("nccl", store), rank, world,
          cuda_index, timeout);
    }
    *out = new Group{pg, cpu, store, rank, world, timeout, 0};
  });
}

#ifndef MEDCAP_NCCL
// This build's libtorch has no CUDA or its headers were missing: the Rust
// side refuses NCCL before it gets here.
c10::intrusive_ptr<c10d::Backend>
medcap_dist::nccl_backend(const c10::intrusive_ptr<c10d::Store> &, int, int,
                          int, std::chrono::milliseconds) {
  throw std::runtime_error("this medcap was built without NCCL");
}
#endif

// Shuts the group down (NCCL releases its communicators; Gloo has nothing
// to do) and frees it; an error in the shutdown is ignored, since the
// process is leaving the group either way.
void medcap_dist_destroy(void *group) {
  auto *g = static_cast<Group *>(group);
  char *error = guarded([&] {
    if (g->pg != g->cpu) {
      g->pg->shutdown();
    }
    g->cpu->shutdown();
  });
  std::free(error);
  delete g;
}

// Sums `tensor` (an at::Tensor*, tch's C_tensor) over every rank, in place.
char *medcap_dist_all_reduce_sum(void *group, void *tensor) {
  return guarded([&] {
    auto &g = *static_cast<Group *>(group);
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor *>(tensor)};
    wait(backend(g, tensors[0]).allreduce(tensors), g);
  });
}

// As medcap_dist_all_reduce_sum, waiting up to `timeout_ms` instead of the
// group's timeout: for ranks that wait while another does work of its own.
char *medcap_dist_all_reduce_sum_within(void *group, void *tensor,
                                        int64_t timeout_ms) {
  return guarded([&] {
    auto &g = *static_cast<Group *>(group);
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor *>(tensor)};
    c10d::AllreduceOptions options;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    backend(g, tensors[0]).allreduce(tensors, options)->wait(options.timeout);
  });
}

// Replaces `tensor` on every rank by rank `root`'s.
char *medcap_dist_broadcast(void *group, void *tensor, int root) {
  return guarded([&] {
    auto &g = *static_cast<Group *>(group);
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor *>(tensor)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    wait(backend(g, tensors[0]).broadcast(tensors, options), g);
  });
}

// Fills `outputs[r]` (world tensors shaped like `input`) with rank r's input.
char *medcap_dist_all_gather(void *group, void *input, void **outputs,
                             int count) {
  return guarded([&] {
    auto &g = *static_cast<Group *>(group);
    std::vector<at::Tensor> in{*static_cast<at::Tensor *>(input)};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < count; ++r) {
      out[0].push_back(*static_cast<at::Tensor *>(outputs[r]));
    }
    wait(backend(g, in[0]).allgather(out, in), g);
  });
}

char *medcap_dist_barrier(void *group) {
  return guarded([&] {
    auto &g = *static_cast<Group *>(group);
    wait(g.cpu->barrier(), g);
  });
}

// After a failed collective: which ranks are gone. Every surviving rank
// leaves a key in the store (which outlives the ranks: torchrun's agent
// serves it, or rank 0) and waits up to `wait_ms` for the others' keys;
// `lost[r]` is set to 1 for each rank r whose key did not come. (c10d's
// monitored barrier cannot tell: on a pair whose peer died it rethrows the
// transport's error.) A store that cannot be reached is the error: then
// its server, rank 0 outside torchrun, is the one lost.
char *medcap_dist_find_lost(void *group, int64_t wait_ms, int *lost) {
  return guarded([&] {
    auto &g = *static_cast<Group *>(group);
    // Keys of this check alone: a later check (another failure in the
    // same group) must not count an answer given to an earlier one.
    const int check = g.checks++;
    auto key = [&](int r) {
      return "answered/" + std::to_string(check) + "/" + std::to_string(r);
    };
    g.store->set(key(g.rank), std::vector<uint8_t>{1});
    std::vector<std::string> all;
    for (int r = 0; r < g.world; ++r) {
      all.push_back(key(r));
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!g.store->check(all) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (int r = 0; r < g.world; ++r) {
      lost[r] = g.store->check({key(r)}) ? 0 : 1;
    }
  });
}

} // extern "C"
