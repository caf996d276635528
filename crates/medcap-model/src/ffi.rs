//! The libtorch calls that tch 0.24 does not bind, compiled from
//! `csrc/amp.cpp` by this crate's build script. The only `unsafe` code in
//! medcap: each function takes and returns plain integers or writes through
//! pointers to two local integers, catches every C++ exception on its side
//! and reports failure as -1, so the safe wrappers below cannot be misused.
#![allow(unsafe_code)]

use std::os::raw::c_int;

unsafe extern "C" {
    fn medcap_autocast_state(device: c_int, enabled: *mut c_int, dtype: *mut c_int) -> c_int;
    fn medcap_autocast_set(device: c_int, enabled: c_int, dtype: c_int) -> c_int;
    fn medcap_autocast_enter() -> c_int;
    fn medcap_autocast_exit() -> c_int;
    fn medcap_cuda_peak_allocated(index: c_int) -> i64;
    fn medcap_cuda_reset_peak(index: c_int) -> c_int;
}

/// Autocast's state on a device type (0 CPU, 1 CUDA): enabled, and its
/// dtype as a c10 `ScalarType` code; `None` when libtorch refuses.
pub(crate) fn autocast_state(device: c_int) -> Option<(bool, c_int)> {
    let (mut enabled, mut dtype) = (0, 0);
    // SAFETY: both pointers are to live locals; the callee writes one int to each.
    let rc = unsafe { medcap_autocast_state(device, &mut enabled, &mut dtype) };
    (rc == 0).then_some((enabled != 0, dtype))
}

/// Sets autocast on a device type; false when libtorch refuses.
pub(crate) fn autocast_set(device: c_int, enabled: bool, dtype: c_int) -> bool {
    // SAFETY: integers only; the callee catches its exceptions.
    unsafe { medcap_autocast_set(device, c_int::from(enabled), dtype) == 0 }
}

/// One more level of autocast nesting.
pub(crate) fn autocast_enter() -> bool {
    // SAFETY: no arguments; the callee catches its exceptions.
    unsafe { medcap_autocast_enter() >= 0 }
}

/// One level less; the cast cache is cleared at the outermost level.
pub(crate) fn autocast_exit() {
    // SAFETY: no arguments; the callee catches its exceptions.
    unsafe {
        medcap_autocast_exit();
    }
}

/// Peak bytes of the CUDA caching allocator on a device since the last reset.
pub(crate) fn cuda_peak_allocated(index: c_int) -> Option<u64> {
    // SAFETY: an integer in, an integer out; the callee catches its exceptions.
    let bytes = unsafe { medcap_cuda_peak_allocated(index) };
    u64::try_from(bytes).ok()
}

/// Resets the CUDA allocator's peak statistics of a device.
pub(crate) fn cuda_reset_peak(index: c_int) -> bool {
    // SAFETY: an integer in, an integer out; the callee catches its exceptions.
    unsafe { medcap_cuda_reset_peak(index) == 0 }
}
