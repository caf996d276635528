// The NCCL process group, compiled only when libtorch was built with CUDA
// and the NCCL and CUDA headers are present (nccl.h from the nvidia-nccl
// wheel torch depends on; cuda_runtime.h, crt/ and nv/ from the CUDA
// wheels `cargo xtask setup` installs): ProcessGroupNCCL.hpp includes
// them, and its symbols live in libtorch_cuda. Without a GPU it still
// compiles and links; joining then fails with CUDA's own error.

#include "dist.h"

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace medcap_dist {

c10::intrusive_ptr<c10d::Backend>
nccl_backend(const c10::intrusive_ptr<c10d::Store> &store, int rank, int world,
             int cuda_index, std::chrono::milliseconds timeout) {
  // NCCL creates its communicator on the current device: one per process.
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(cuda_index));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world,
                                                        options);
  // The barrier and the first communicator use this device rather than a
  // guess from the rank.
  pg->setBoundDeviceId(at::Device(at::kCUDA, cuda_index));
  return pg;
}

} // namespace medcap_dist
