//! The libtorch calls that tch 0.24 does not bind, compiled from
//! `csrc/amp.cpp`, `csrc/dist.cpp` and (with a CUDA libtorch)
//! `csrc/dist_nccl.cpp` by this crate's build script. The only
//! `unsafe` code in medcap. The autocast and memory functions take and
//! return plain integers or write through pointers to two local integers,
//! and report failure as -1. The distributed functions take C strings
//! built here, tch's own tensor pointers (`at::Tensor*`, which tch's C API
//! passes the same way) and an opaque group handle that only
//! [`DistGroup`] holds; they return a C++ exception as a message, freed
//! here. Every C++ exception is caught on the C++ side, so the safe
//! wrappers below cannot be misused.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_void};
use std::os::raw::c_int;

unsafe extern "C" {
    fn medcap_autocast_state(device: c_int, enabled: *mut c_int, dtype: *mut c_int) -> c_int;
    fn medcap_autocast_set(device: c_int, enabled: c_int, dtype: c_int) -> c_int;
    fn medcap_autocast_enter() -> c_int;
    fn medcap_autocast_exit() -> c_int;
    fn medcap_cuda_peak_allocated(index: c_int) -> i64;
    fn medcap_cuda_reset_peak(index: c_int) -> c_int;
    fn medcap_dist_free_error(message: *mut c_char);
    fn medcap_dist_init(
        host: *const c_char,
        port: c_int,
        serve: c_int,
        rank: c_int,
        world: c_int,
        prefix: *const c_char,
        bind_host: *const c_char,
        cuda_index: c_int,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn medcap_dist_destroy(group: *mut c_void);
    fn medcap_dist_all_reduce_sum(group: *mut c_void, tensor: *mut c_void) -> *mut c_char;
    fn medcap_dist_all_reduce_sum_within(
        group: *mut c_void,
        tensor: *mut c_void,
        timeout_ms: i64,
    ) -> *mut c_char;
    fn medcap_dist_broadcast(group: *mut c_void, tensor: *mut c_void, root: c_int) -> *mut c_char;
    fn medcap_dist_all_gather(
        group: *mut c_void,
        input: *mut c_void,
        outputs: *mut *mut c_void,
        count: c_int,
    ) -> *mut c_char;
    fn medcap_dist_barrier(group: *mut c_void) -> *mut c_char;
    fn medcap_dist_find_lost(group: *mut c_void, wait_ms: i64, lost: *mut c_int) -> *mut c_char;
}

/// A C++ exception's message (or nothing for success), freed on the C side.
fn take_error(message: *mut c_char) -> Result<(), String> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string the C side
    // allocated for us and never touches again.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once, by the allocator that made it.
    unsafe { medcap_dist_free_error(message) };
    Err(text)
}

/// A string for C, or the reason it cannot be one.
fn c_string(what: &str, text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("{what} contains a NUL byte"))
}

/// A c10d Gloo process group: the only owner of its C++ handle.
#[derive(Debug)]
pub(crate) struct DistGroup {
    handle: *mut c_void,
}

// SAFETY: c10d's process groups are used from any thread in PyTorch; the
// handle is only ever used through `&self` calls that c10d serialises.
unsafe impl Send for DistGroup {}

/// Where and how to join: see `csrc/dist.cpp`'s `medcap_dist_init`.
pub(crate) struct DistInit<'a> {
    pub host: &'a str,
    pub port: u16,
    pub serve: bool,
    pub rank: usize,
    pub world: usize,
    pub prefix: &'a str,
    pub bind_host: &'a str,
    /// NCCL on this CUDA device; Gloo when `None`.
    pub cuda_index: Option<usize>,
    pub timeout_ms: i64,
}

impl DistGroup {
    pub(crate) fn join(init: &DistInit<'_>) -> Result<Self, String> {
        let host = c_string("the master address", init.host)?;
        let prefix = c_string("the store prefix", init.prefix)?;
        let bind = c_string("the bind address", init.bind_host)?;
        let int = |n: usize| c_int::try_from(n).map_err(|_| format!("{n} is too large"));
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid C strings that outlive the call, integers, and a
        // pointer to a local the callee sets on success only.
        let rc = unsafe {
            medcap_dist_init(
                host.as_ptr(),
                c_int::from(init.port),
                c_int::from(init.serve),
                int(init.rank)?,
                int(init.world)?,
                prefix.as_ptr(),
                bind.as_ptr(),
                init.cuda_index.map_or(Ok(-1), int)?,
                init.timeout_ms,
                &mut handle,
            )
        };
        take_error(rc)?;
        if handle.is_null() {
            return Err("c10d returned no process group".into());
        }
        Ok(Self { handle })
    }

    pub(crate) fn all_reduce_sum(&self, tensor: &mut tch::Tensor) -> Result<(), String> {
        // SAFETY: a live group handle and tch's own tensor pointer.
        take_error(unsafe { medcap_dist_all_reduce_sum(self.handle, tensor.as_mut_ptr().cast()) })
    }

    pub(crate) fn all_reduce_sum_within(
        &self,
        tensor: &mut tch::Tensor,
        timeout_ms: i64,
    ) -> Result<(), String> {
        // SAFETY: a live group handle and tch's own tensor pointer.
        take_error(unsafe {
            medcap_dist_all_reduce_sum_within(self.handle, tensor.as_mut_ptr().cast(), timeout_ms)
        })
    }

    pub(crate) fn broadcast(&self, tensor: &mut tch::Tensor, root: usize) -> Result<(), String> {
        let root = c_int::try_from(root).map_err(|_| format!("rank {root} is too large"))?;
        // SAFETY: a live group handle and tch's own tensor pointer.
        take_error(unsafe { medcap_dist_broadcast(self.handle, tensor.as_mut_ptr().cast(), root) })
    }

    pub(crate) fn all_gather(
        &self,
        input: &mut tch::Tensor,
        outputs: &mut [tch::Tensor],
    ) -> Result<(), String> {
        let mut pointers: Vec<*mut c_void> =
            outputs.iter_mut().map(|t| t.as_mut_ptr().cast()).collect();
        let count = c_int::try_from(pointers.len()).map_err(|_| "too many outputs".to_owned())?;
        // SAFETY: a live group handle, tch's tensor pointers, and an array
        // of `count` of them that outlives the call.
        take_error(unsafe {
            medcap_dist_all_gather(
                self.handle,
                input.as_mut_ptr().cast(),
                pointers.as_mut_ptr(),
                count,
            )
        })
    }

    pub(crate) fn barrier(&self) -> Result<(), String> {
        // SAFETY: a live group handle.
        take_error(unsafe { medcap_dist_barrier(self.handle) })
    }

    /// The ranks of a group of `world` that did not answer within
    /// `wait_ms` after a failure (see `medcap_dist_find_lost`).
    pub(crate) fn find_lost(&self, world: usize, wait_ms: i64) -> Result<Vec<usize>, String> {
        let mut lost: Vec<c_int> = vec![0; world];
        // SAFETY: a live group handle and an array of one int per rank, the
        // group's size, that outlives the call.
        take_error(unsafe { medcap_dist_find_lost(self.handle, wait_ms, lost.as_mut_ptr()) })?;
        Ok(lost
            .iter()
            .enumerate()
            .filter(|(_, l)| **l != 0)
            .map(|(r, _)| r)
            .collect())
    }
}

impl Drop for DistGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from medcap_dist_init and is dropped once.
        unsafe { medcap_dist_destroy(self.handle) }
    }
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
