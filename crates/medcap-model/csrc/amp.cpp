// Mixed-precision and device-memory hooks of libtorch that tch 0.24 does not
// bind: autocast for a given device type and dtype (tch's `autocast` covers
// CUDA at fp16 only), and the caching allocator's peak-memory statistics of
// an accelerator. Each entry point catches every C++ exception and reports
// failure through its return value, so no exception crosses into Rust.

#include <ATen/autocast_mode.h>
#include <c10/core/CachingDeviceAllocator.h>

#include <cstdint>
#include <exception>

namespace {

// 0: the CPU, 1: CUDA (the only device types medcap uses).
bool device_type(int code, c10::DeviceType *out) {
  switch (code) {
  case 0:
    *out = c10::DeviceType::CPU;
    return true;
  case 1:
    *out = c10::DeviceType::CUDA;
    return true;
  default:
    return false;
  }
}

} // namespace

extern "C" {

// Current state of autocast on `device`: enabled (0/1) and its dtype as a
// c10::ScalarType code. Returns 0, or -1 on failure.
int medcap_autocast_state(int device, int *enabled, int *dtype) {
  try {
    c10::DeviceType type;
    if (!device_type(device, &type)) {
      return -1;
    }
    *enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    *dtype = static_cast<int>(at::autocast::get_autocast_dtype(type));
    return 0;
  } catch (const std::exception &) {
    return -1;
  }
}

// Sets autocast on `device` to `enabled` with `dtype` (a c10::ScalarType
// code). Returns 0, or -1 on failure.
int medcap_autocast_set(int device, int enabled, int dtype) {
  try {
    c10::DeviceType type;
    if (!device_type(device, &type)) {
      return -1;
    }
    at::autocast::set_autocast_dtype(type, static_cast<c10::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(type, enabled != 0);
    return 0;
  } catch (const std::exception &) {
    return -1;
  }
}

// Enters one level of autocast nesting (torch.autocast's __enter__).
int medcap_autocast_enter() {
  try {
    return at::autocast::increment_nesting();
  } catch (const std::exception &) {
    return -1;
  }
}

// Leaves one level; the cast cache is cleared when the outermost level ends,
// as torch.autocast's __exit__ does. Returns the remaining depth, or -1.
int medcap_autocast_exit() {
  try {
    int depth = at::autocast::decrement_nesting();
    if (depth == 0) {
      at::autocast::clear_cache();
    }
    return depth;
  } catch (const std::exception &) {
    return -1;
  }
}

// Peak bytes allocated by the CUDA caching allocator on device `index` since
// the last reset (torch.cuda.max_memory_allocated). -1 when there is no such
// allocator (no CUDA) or the query fails.
int64_t medcap_cuda_peak_allocated(int index) {
  try {
    c10::DeviceAllocator *allocator =
        c10::getDeviceAllocator(c10::DeviceType::CUDA);
    if (allocator == nullptr || !allocator->initialized()) {
      return -1;
    }
    auto stats = allocator->getDeviceStats(static_cast<c10::DeviceIndex>(index));
    return stats.allocated_bytes[static_cast<size_t>(
                                     c10::CachingAllocator::StatType::AGGREGATE)]
        .peak;
  } catch (const std::exception &) {
    return -1;
  }
}

// Resets the peak statistics of device `index`
// (torch.cuda.reset_peak_memory_stats). Returns 0, or -1.
int medcap_cuda_reset_peak(int index) {
  try {
    c10::DeviceAllocator *allocator =
        c10::getDeviceAllocator(c10::DeviceType::CUDA);
    if (allocator == nullptr || !allocator->initialized()) {
      return -1;
    }
    allocator->resetPeakStats(static_cast<c10::DeviceIndex>(index));
    return 0;
  } catch (const std::exception &) {
    return -1;
  }
}

} // extern "C"
