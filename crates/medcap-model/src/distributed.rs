//! Several processes as one group: PyTorch's own distributed engine (c10d),
//! as libtorch ships it, with the rendezvous and the collectives data
//! parallelism needs. The communication is c10d's: a `TCPStore` for the
//! rendezvous, a Gloo process group for CPU tensors and an NCCL one for
//! CUDA tensors, the code `torch.distributed` runs; medcap only binds it
//! (`csrc/dist.cpp`, `csrc/dist_nccl.cpp`). A group's backend follows its
//! device: Gloo on the CPU, NCCL on `cuda:N` (one GPU per process).
//!
//! A process learns its place from the environment `torchrun` (or a
//! scheduler, or a person) sets: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! `MASTER_ADDR`, `MASTER_PORT`. Under `torchrun` the agent already serves
//! the store (`TORCHELASTIC_USE_AGENT_STORE=True`) and every rank is its
//! client; otherwise rank 0 serves it. Keys are prefixed with the restart
//! attempt (`TORCHELASTIC_RESTART_COUNT`), because the agent's store outlives
//! a restart and a fresh attempt must not meet the keys of the failed one.
//! Every call waits at most the group's timeout, so a lost peer is an error
//! naming this rank and the operation, never a hang.

use std::time::Duration;

use tch::{Device, Tensor};

use crate::error::ModelError;
use crate::ffi::{DistGroup, DistInit};

/// How long a rendezvous or collective waits by default: 5 minutes
/// (`torch.distributed`'s 30 is long to wait for a peer that is gone).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A process's place in a group, from the launcher's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// This process's rank, `0..size`.
    pub rank: usize,
    /// How many processes the group has.
    pub size: usize,
    /// This process's rank on its machine (`LOCAL_RANK`; its GPU index).
    pub local_rank: usize,
    /// The store's host (`MASTER_ADDR`).
    pub master_addr: String,
    /// The store's port (`MASTER_PORT`).
    pub master_port: u16,
    /// Whether `torchrun`'s agent serves the store (every rank a client).
    pub agent_store: bool,
    /// Restarts of the group so far (`TORCHELASTIC_RESTART_COUNT`; 0 outside
    /// torchrun): a resumed run knows from it that it follows a failure.
    pub restart_count: u64,
}

impl World {
    /// The group this process belongs to, or `None` when it runs alone (no
    /// `WORLD_SIZE`, or 1).
    ///
    /// # Errors
    /// [`ModelError::Distributed`] naming the variable that is missing or
    /// not a number, or a rank outside the world.
    pub fn from_env() -> Result<Option<Self>, ModelError> {
        Self::from_vars(|key| std::env::var(key).ok())
    }

    /// [`Self::from_env`] over any source of variables.
    ///
    /// ```
    /// use medcap_model::distributed::World;
    ///
    /// let vars = [("WORLD_SIZE", "2"), ("RANK", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")];
    /// let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    /// let world = World::from_vars(get).unwrap().unwrap();
    /// assert_eq!((world.rank, world.size, world.local_rank, world.agent_store), (1, 2, 1, false));
    /// assert!(World::from_vars(|_| None).unwrap().is_none());
    /// ```
    ///
    /// # Errors
    /// As [`Self::from_env`].
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ModelError> {
        let bad = |reason: String| ModelError::Distributed {
            rank: None,
            operation: "reading the launcher's environment",
            reason,
        };
        let number = |key: &str| -> Result<Option<u64>, ModelError> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| bad(format!("{key}={v:?} is not a whole number")))
                })
                .transpose()
        };
        let size = match number("WORLD_SIZE")? {
            None | Some(1) => return Ok(None),
            Some(0) => return Err(bad("WORLD_SIZE=0: a group has at least one process".into())),
            Some(n) => n as usize,
        };
        let missing = |key: &str| {
            bad(format!(
                "WORLD_SIZE={size} but {key} is not set (torchrun sets RANK, MASTER_ADDR and \
                 MASTER_PORT; set them by hand or through your scheduler otherwise)"
            ))
        };
        let need = |key: &str| get(key).ok_or_else(|| missing(key));
        let rank = number("RANK")?.ok_or_else(|| missing("RANK"))? as usize;
        if rank >= size {
            return Err(bad(format!("RANK={rank} is outside WORLD_SIZE={size}")));
        }
        let master_addr = need("MASTER_ADDR")?;
        let port = need("MASTER_PORT")?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| bad(format!("MASTER_PORT={port:?} is not a port number")))?;
        Ok(Some(Self {
            rank,
            size,
            local_rank: number("LOCAL_RANK")?.map_or(rank, |r| r as usize),
            master_addr,
            master_port,
            agent_store: get("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v == "True"),
            restart_count: number("TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0),
        }))
    }
}

impl World {
    /// This process alone as a group, its store served here on a free
    /// loopback port: for checking the collectives on a device (the
    /// environment of a world of one is no group at all to
    /// [`Self::from_env`]).
    ///
    /// # Errors
    /// [`ModelError::Distributed`]: no loopback port is free.
    pub fn alone_on_loopback() -> Result<Self, ModelError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| ModelError::Distributed {
                rank: Some(0),
                operation: "finding a free loopback port",
                reason: e.to_string(),
            })?
            .port();
        Ok(Self {
            rank: 0,
            size: 1,
            local_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: port,
            agent_store: false,
            restart_count: 0,
        })
    }
}

/// Whether this build can make NCCL process groups: it was built against
/// a CUDA libtorch with NCCL's and CUDA's headers at hand.
///
/// # Errors
/// Why not, as the build found it (a libtorch without CUDA, headers
/// missing).
pub fn nccl_built() -> Result<(), &'static str> {
    #[cfg(medcap_nccl)]
    return Ok(());
    #[cfg(not(medcap_nccl))]
    return Err(env!("MEDCAP_NCCL_MISSING"));
}

/// A process group: Gloo over CPU tensors, and for a group on a GPU also
/// NCCL over that GPU's tensors (each collective goes to the backend of its
/// tensor's device), each collective waiting at most the group's timeout.
/// Dropping it shuts it down and leaves the group.
#[derive(Debug)]
pub struct ProcessGroup {
    inner: DistGroup,
    world: World,
    timeout: Duration,
    device: Device,
}

impl ProcessGroup {
    /// Joins `world`'s group: connects to (or, for rank 0 outside torchrun,
    /// serves) the store at `MASTER_ADDR:MASTER_PORT` and meets every other
    /// rank, waiting at most `timeout`. On a loopback `MASTER_ADDR` the
    /// ranks talk over loopback too; otherwise Gloo binds the address this
    /// machine's host name resolves to, as `torch.distributed` does when
    /// `GLOO_SOCKET_IFNAME` is not set (medcap does not read it).
    ///
    /// # Errors
    /// [`ModelError::Distributed`] naming this rank: no store reachable,
    /// a rank that never came, within `timeout`; a `timeout` under one
    /// millisecond (c10d reads 0 as "wait for ever").
    pub fn join(world: World, timeout: Duration) -> Result<Self, ModelError> {
        Self::join_on(world, timeout, Device::Cpu)
    }

    /// [`Self::join`] for `device`'s tensors too: for `Device::Cuda(n)` an
    /// NCCL group on that GPU beside the Gloo one (one GPU per process: NCCL
    /// refuses two ranks on one). Small exchanges (counts, flags, settings)
    /// stay on Gloo, where a wait longer than the group's timeout is
    /// honoured ([`Self::all_reduce_sum_within`]).
    ///
    /// # Errors
    /// As [`Self::join`]; for a CUDA device also: this build has no NCCL
    /// ([`nccl_built`]), no such GPU here, or NCCL's own error.
    pub fn join_on(world: World, timeout: Duration, device: Device) -> Result<Self, ModelError> {
        let cuda_index = match device {
            Device::Cpu => None,
            Device::Cuda(index) => {
                let refuse = |reason: String| ModelError::Distributed {
                    rank: Some(world.rank),
                    operation: "joining the process group",
                    reason,
                };
                nccl_built().map_err(|why| {
                    refuse(format!(
                        "an NCCL group for cuda:{index} needs NCCL, but {why}"
                    ))
                })?;
                let count = tch::Cuda::device_count();
                if i64::try_from(index).map_or(true, |i| i >= count) {
                    return Err(refuse(format!(
                        "cuda:{index} does not exist here ({count} CUDA devices)"
                    )));
                }
                Some(index)
            }
            other => {
                return Err(ModelError::Distributed {
                    rank: Some(world.rank),
                    operation: "joining the process group",
                    reason: format!("no process group works on {other:?} (cpu or cuda:N)"),
                });
            }
        };
        if timeout < Duration::from_millis(1) {
            return Err(ModelError::Distributed {
                rank: Some(world.rank),
                operation: "joining the process group",
                reason: format!("a timeout of {timeout:?} would wait for ever"),
            });
        }
        // Far beyond any wait, and far from overflowing C++'s clock.
        let timeout = timeout.min(Duration::from_secs(7 * 24 * 3600));
        let loopback = matches!(world.master_addr.as_str(), "localhost" | "::1")
            || world.master_addr.starts_with("127.");
        let prefix = format!("medcap/{}", world.restart_count);
        let init = DistInit {
            host: &world.master_addr,
            port: world.master_port,
            serve: !world.agent_store && world.rank == 0,
            rank: world.rank,
            world: world.size,
            prefix: &prefix,
            bind_host: if loopback { "127.0.0.1" } else { "" },
            cuda_index,
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
        };
        let inner = DistGroup::join(&init).map_err(|reason| ModelError::Distributed {
            rank: Some(world.rank),
            operation: "joining the process group",
            reason: format!(
                "{reason} (store {}:{}, {} processes, timeout {} s)",
                world.master_addr,
                world.master_port,
                world.size,
                timeout.as_secs()
            ),
        })?;
        Ok(Self {
            inner,
            world,
            timeout,
            device,
        })
    }

    /// The device whose tensors this group sums fastest: this process's GPU
    /// (NCCL) or the CPU (Gloo); CPU tensors are always accepted.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Where this process stands in the group.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.world.rank
    }

    /// How many processes the group has.
    pub fn size(&self) -> usize {
        self.world.size
    }

    fn failed(&self, operation: &'static str) -> impl FnOnce(String) -> ModelError + '_ {
        move |reason| ModelError::Distributed {
            rank: Some(self.world.rank),
            operation,
            reason,
        }
    }

    /// A collective that failed: c10d's message, and which ranks are gone
    /// (those that did not answer through the store within a few seconds;
    /// a store that cannot be reached means its server, rank 0 outside
    /// torchrun, is gone), so that the error says who, not only that a
    /// connection closed.
    fn collective_failed(&self, operation: &'static str) -> impl FnOnce(String) -> ModelError + '_ {
        move |reason| {
            let wait = self.timeout.min(Duration::from_secs(5));
            let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            let lost = match self.inner.find_lost(self.world.size, wait) {
                Ok(ranks) if ranks.is_empty() => String::new(),
                Ok(ranks) => format!(
                    "; lost: rank {} (no answer within {} s of the failure)",
                    ranks
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    (wait + 999) / 1000
                ),
                Err(_) if !self.world.agent_store => {
                    "; lost: rank 0 (its store no longer answers)".to_owned()
                }
                Err(_) => String::new(),
            };
            self.failed(operation)(format!("{}{lost}", first_line(&reason)))
        }
    }

    /// The backends work on dense memory: a strided tensor would be summed
    /// or overwritten wrongly, without an error, so it is refused here, as
    /// is one on a device that is neither the CPU (Gloo's) nor the group's.
    fn check(&self, operation: &'static str, tensor: &Tensor) -> Result<(), ModelError> {
        let device = tensor.device();
        if (device != Device::Cpu && device != self.device) || !tensor.is_contiguous() {
            return Err(self.failed(operation)(format!(
                "the tensor must be a contiguous tensor on the CPU or on the group's device, \
                 {:?} (this one is {}on {:?})",
                self.device,
                if tensor.is_contiguous() {
                    ""
                } else {
                    "strided, "
                },
                device
            )));
        }
        Ok(())
    }

    /// Sums `tensor` (contiguous) over every rank, in place: over NCCL when
    /// it is on the group's GPU, over Gloo when it is on the CPU.
    ///
    /// # Errors
    /// [`ModelError::Distributed`]: a peer lost, the timeout passed, a
    /// tensor that is not contiguous or not on the CPU, or one c10d refuses
    /// (another shape on another rank).
    pub fn all_reduce_sum(&self, tensor: &mut Tensor) -> Result<(), ModelError> {
        self.check("all-reduce", tensor)?;
        self.inner
            .all_reduce_sum(tensor)
            .map_err(self.collective_failed("all-reduce"))
    }

    /// [`Self::all_reduce_sum`] waiting up to `timeout` rather than the
    /// group's: for ranks that wait while another does a long piece of work
    /// alone (rank 0 preparing data or writing a report). A peer that dies
    /// meanwhile still ends the wait at once (its connection closes).
    ///
    /// # Errors
    /// As [`Self::all_reduce_sum`].
    pub fn all_reduce_sum_within(
        &self,
        tensor: &mut Tensor,
        timeout: Duration,
    ) -> Result<(), ModelError> {
        self.check("all-reduce", tensor)?;
        let timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(7 * 24 * 3600));
        self.inner
            .all_reduce_sum_within(
                tensor,
                i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            )
            .map_err(self.collective_failed("all-reduce"))
    }

    /// Makes `tensor` on every rank equal to rank `root`'s.
    ///
    /// # Errors
    /// As [`Self::all_reduce_sum`].
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<(), ModelError> {
        self.check("broadcast", tensor)?;
        self.inner
            .broadcast(tensor, root)
            .map_err(self.collective_failed("broadcast"))
    }

    /// Every rank's `tensor` (on the CPU or the group's device), in rank
    /// order (each rank's of the same shape and kind).
    ///
    /// # Errors
    /// As [`Self::all_reduce_sum`].
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>, ModelError> {
        let mut input = tensor.contiguous();
        self.check("all-gather", &input)?;
        let mut outputs: Vec<Tensor> = (0..self.world.size).map(|_| input.empty_like()).collect();
        self.inner
            .all_gather(&mut input, &mut outputs)
            .map_err(self.collective_failed("all-gather"))?;
        Ok(outputs)
    }

    /// Every rank's `bytes`, in rank order (lengths may differ): two
    /// all-gathers, the lengths and then the bytes padded to the longest.
    ///
    /// # Errors
    /// As [`Self::all_reduce_sum`].
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ModelError> {
        let length = i64::try_from(bytes.len()).map_err(|_| {
            self.failed("all-gather")(format!("{} bytes are too many", bytes.len()))
        })?;
        let mut lengths = Vec::with_capacity(self.world.size);
        for tensor in self.all_gather(&Tensor::from_slice(&[length]))? {
            let value =
                i64::try_from(&tensor).map_err(|e| self.failed("all-gather")(e.to_string()))?;
            lengths.push(usize::try_from(value).unwrap_or(0));
        }
        // Gloo is given at least one byte.
        let longest = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut padded = bytes.to_vec();
        padded.resize(longest, 0);
        let gathered = self.all_gather(&Tensor::from_slice(&padded))?;
        let mut out = Vec::with_capacity(gathered.len());
        for (tensor, length) in gathered.iter().zip(lengths) {
            let mut bytes = Vec::<u8>::try_from(tensor)
                .map_err(|e| self.failed("all-gather")(e.to_string()))?;
            bytes.truncate(length);
            out.push(bytes);
        }
        Ok(out)
    }

    /// Checks that every rank passes the same `fingerprint` of `what` (a
    /// hash of its settings), naming the first rank that differs from rank
    /// 0: ranks started with different options would work on different
    /// things and meet at the wrong collectives.
    ///
    /// # Errors
    /// [`ModelError::Distributed`] naming that rank; as [`Self::all_gather`].
    pub fn check_same(&self, what: &str, fingerprint: u64) -> Result<(), ModelError> {
        let gathered = self.all_gather_bytes(&fingerprint.to_le_bytes())?;
        if let Some(rank) = gathered.iter().position(|f| *f != gathered[0]) {
            return Err(self.failed("comparing the ranks' settings")(format!(
                "rank {rank}'s {what} differs from rank 0's; start every rank with the same \
                 configuration file and options"
            )));
        }
        Ok(())
    }

    /// Returns when every rank has called it.
    ///
    /// # Errors
    /// As [`Self::all_reduce_sum`].
    pub fn barrier(&self) -> Result<(), ModelError> {
        self.inner
            .barrier()
            .map_err(self.collective_failed("barrier"))
    }
}

/// The first line of a c10d message, without its `[file.cpp:line]` prefix:
/// what a user reads.
fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or("").trim();
    match line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    {
        Some((place, rest)) if place.contains(':') => rest,
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_of_one() -> World {
        World::alone_on_loopback().unwrap()
    }

    #[test]
    fn nccl_is_built_against_a_cuda_libtorch() {
        let torch = std::path::PathBuf::from(std::env::var("LIBTORCH").unwrap());
        let cuda = torch.join("lib/libtorch_cuda.so").exists();
        // `cargo xtask setup` completes the headers of its own torch; a
        // libtorch of the user's may lack them, and then says why.
        let setups_own = torch.components().any(|c| c.as_os_str() == ".venv");
        match nccl_built() {
            Ok(()) => assert!(cuda, "NCCL built against {}", torch.display()),
            Err(why) if cuda => {
                assert!(!setups_own, "no NCCL against setup's CUDA libtorch: {why}");
                assert!(why.contains("headers"), "{why}");
            }
            Err(why) => assert!(why.contains("without CUDA"), "{why}"),
        }
    }

    /// The NCCL entry point itself, past the device check of `join_on`:
    /// without a GPU, CUDA's error comes back as a message; with one, a
    /// group of one sums as it should.
    #[test]
    fn an_nccl_group_of_one_joins_or_reports_cuda_s_error() {
        if nccl_built().is_err() {
            return;
        }
        let world = world_of_one();
        let prefix = "medcap/test".to_owned();
        let init = DistInit {
            host: &world.master_addr,
            port: world.master_port,
            serve: true,
            rank: 0,
            world: 1,
            prefix: &prefix,
            bind_host: "127.0.0.1",
            cuda_index: Some(0),
            timeout_ms: 20_000,
        };
        match DistGroup::join(&init) {
            Ok(group) => {
                assert!(tch::Cuda::is_available());
                let mut t = Tensor::from_slice(&[1.0f32, 2.0]).to_device(Device::Cuda(0));
                group.all_reduce_sum(&mut t).unwrap();
                assert_eq!(
                    Vec::<f32>::try_from(&t.to_device(Device::Cpu)).unwrap(),
                    [1.0, 2.0]
                );
            }
            Err(message) => {
                assert!(!tch::Cuda::is_available(), "{message}");
                assert!(message.contains("CUDA"), "{message}");
            }
        }
    }

    #[test]
    fn a_gpu_group_on_a_gpu_not_here_is_refused_by_name() {
        let count = usize::try_from(tch::Cuda::device_count()).unwrap();
        let err =
            ProcessGroup::join_on(world_of_one(), Duration::from_secs(5), Device::Cuda(count))
                .unwrap_err()
                .to_string();
        let expected = match nccl_built() {
            Ok(()) => format!("cuda:{count} does not exist here ({count} CUDA devices)"),
            Err(_) => "needs NCCL".to_owned(),
        };
        assert!(err.contains(&expected), "{err}");
    }

    #[test]
    fn tensors_on_another_device_than_the_group_s_are_refused() {
        let group = ProcessGroup::join(world_of_one(), Duration::from_secs(20)).unwrap();
        assert_eq!(group.device(), Device::Cpu);
        let mut strided = Tensor::arange(6, (tch::Kind::Float, Device::Cpu))
            .view([2, 3])
            .transpose(0, 1);
        let err = group.all_reduce_sum(&mut strided).unwrap_err().to_string();
        assert!(err.contains("strided"), "{err}");
        assert_eq!(group.all_gather_bytes(b"abc").unwrap(), [b"abc".to_vec()]);
    }
}
