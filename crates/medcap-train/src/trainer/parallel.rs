//! Data parallelism over a c10d process group (medcap-model's
//! [`ProcessGroup`]), in the manner of torch's DistributedDataParallel:
//! every rank holds the whole model, parameters are broadcast from rank 0
//! at the start, each rank runs its share of a step's micro-batches, and
//! the gradients are summed over the ranks in buckets before the update.
//!
//! What makes N processes equal one: the step's objective is divided by the
//! step's target tokens and micro-batches counted over every rank, so the
//! summed gradients are the one-process gradients (no division by N
//! afterwards); the parameters are walked in one name-sorted order; a
//! gradient that one rank lacks and another has is taken as zeros there, as
//! autograd's accumulation would; decisions (a non-finite loss, an
//! interrupt, early stopping) are taken on summed values, so every rank
//! takes the same one. Work only rank 0 does (the run directory, metrics,
//! checkpoints) ends in [`Replicas::settle`], so that its failure stops the
//! others with an error instead of leaving them waiting.
//!
//! With one process ([`Replicas::single`]) every operation is the identity
//! and nothing is communicated.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use medcap_model::ModelError;
use medcap_model::distributed::ProcessGroup;
use tch::{Device, Kind, Tensor};

use crate::error::TrainError;

/// How long ranks wait for work that only some of them do (rank 0
/// preparing a data set, scoring, writing a checkpoint to a slow disk),
/// beyond the group's timeout: a rank that dies meanwhile still ends the
/// wait at once, since its connections close.
pub const LEADER_WORK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Gradients are summed in buckets of at most this many values (25 MiB of
/// f32, DistributedDataParallel's `bucket_cap_mb` default).
const BUCKET_VALUES: i64 = 25 * 1024 * 1024 / 4;

/// This process's part in a data-parallel run: a process group, or none.
/// Clones share the group (a study's trainers run one after another in
/// the same group).
#[derive(Debug, Clone)]
pub struct Replicas {
    group: Option<Rc<ProcessGroup>>,
    traffic: Rc<Cell<Traffic>>,
}

/// What this rank's all-reduces cost since the count was last taken: the
/// bytes it contributed and the seconds spent in the calls (waiting for a
/// slower rank included, as in any collective).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Traffic {
    /// Bytes this rank contributed to all-reduces.
    pub all_reduced_bytes: u64,
    /// Seconds spent in all-reduces.
    #[serde(rename = "communication_seconds")]
    pub seconds: f64,
}

impl Replicas {
    /// One process, no group.
    pub fn single() -> Self {
        Self {
            group: None,
            traffic: Rc::default(),
        }
    }

    /// The ranks of `group`; a group of one process is [`Self::single`].
    pub fn new(group: ProcessGroup) -> Self {
        Self::shared(Rc::new(group))
    }

    /// The ranks of a group shared with other users of it.
    pub fn shared(group: Rc<ProcessGroup>) -> Self {
        if group.size() <= 1 {
            return Self::single();
        }
        Self {
            group: Some(group),
            traffic: Rc::default(),
        }
    }

    /// Every exchange through `group`, even a group of one: for checking a
    /// group's collectives on a device (the device check runs training
    /// through NCCL this way on one GPU), where [`Self::shared`] would skip
    /// them.
    pub fn through(group: Rc<ProcessGroup>) -> Self {
        Self {
            group: Some(group),
            traffic: Rc::default(),
        }
    }

    /// The process group, when there are several processes.
    pub fn group(&self) -> Option<&ProcessGroup> {
        self.group.as_deref()
    }

    /// Rank 0's `flag`, on every rank: a decision rank 0 takes (whether a
    /// stage is done) that the others follow.
    ///
    /// # Errors
    /// As [`Self::sum`].
    pub fn leader_says(&self, flag: bool) -> Result<bool, TrainError> {
        let mine = if self.leader() { flag } else { false };
        self.any(mine)
    }

    /// This process's rank (0 alone).
    pub fn rank(&self) -> usize {
        self.group.as_deref().map_or(0, ProcessGroup::rank)
    }

    /// Processes in the run (1 alone).
    pub fn size(&self) -> usize {
        self.group.as_deref().map_or(1, ProcessGroup::size)
    }

    /// Whether this process writes the run's files (rank 0).
    pub fn leader(&self) -> bool {
        self.rank() == 0
    }

    /// `values` summed over the ranks (f64, exact for counts below 2^53).
    ///
    /// # Errors
    /// [`TrainError::Model`] with [`ModelError::Distributed`]: a peer lost
    /// or the group's timeout passed.
    pub fn sum(&self, values: &[f64]) -> Result<Vec<f64>, TrainError> {
        let Some(group) = &self.group else {
            return Ok(values.to_vec());
        };
        // Counts and flags go over Gloo (CPU), whatever the device.
        let mut tensor = Tensor::from_slice(values);
        self.all_reduce(group, &mut tensor)?;
        Vec::<f64>::try_from(&tensor).map_err(|source| TrainError::Torch {
            context: "reading a summed tensor".into(),
            source,
        })
    }

    /// Whether `flag` is raised on any rank.
    ///
    /// # Errors
    /// As [`Self::sum`].
    pub fn any(&self, flag: bool) -> Result<bool, TrainError> {
        Ok(self.sum(&[f64::from(u8::from(flag))])?[0] > 0.0)
    }

    /// Every rank's outcome of the same piece of work: this rank's error
    /// when it failed, an error naming the ranks that failed when another
    /// did (their own messages say why), else this rank's value. Work that
    /// only rank 0 does passes `Ok` on the others.
    ///
    /// # Errors
    /// This rank's error, or [`ModelError::Distributed`] naming the failed
    /// ranks and `operation`.
    pub fn settle<T, E: From<TrainError>>(
        &self,
        operation: &'static str,
        outcome: Result<T, E>,
    ) -> Result<T, E> {
        if self.group.is_none() {
            return outcome;
        }
        let (_, failed) = self.sum_with_failures(&[], outcome.is_err(), true)?;
        let value = outcome?;
        self.stop_for(operation, &failed)?;
        Ok(value)
    }

    /// `values` summed over the ranks, unless a rank failed the work that
    /// made them: this rank's `failure`, or an error naming the ranks that
    /// failed. The failure travels in the same all-reduce as the values, so
    /// every rank leaves the step at the same collective.
    ///
    /// # Errors
    /// This rank's failure; [`ModelError::Distributed`] naming the failed
    /// ranks and `operation`; as [`Self::sum`].
    pub fn sum_unless_failed(
        &self,
        operation: &'static str,
        values: &[f64],
        failure: Result<(), TrainError>,
    ) -> Result<Vec<f64>, TrainError> {
        if self.group.is_none() {
            failure?;
            return Ok(values.to_vec());
        }
        let (sums, failed) = self.sum_with_failures(values, failure.is_err(), false)?;
        failure?;
        self.stop_for(operation, &failed)?;
        Ok(sums)
    }

    /// `values` summed, and the ranks that raised `failed`; `patient`: the
    /// others may be waiting for work that only some ranks do, so the wait
    /// is [`LEADER_WORK_TIMEOUT`], not the group's timeout.
    fn sum_with_failures(
        &self,
        values: &[f64],
        failed: bool,
        patient: bool,
    ) -> Result<(Vec<f64>, Vec<usize>), TrainError> {
        let mut all = values.to_vec();
        let mut flags = vec![0.0; self.size()];
        flags[self.rank()] = f64::from(u8::from(failed));
        all.extend(flags);
        let mut summed = match (&self.group, patient) {
            (Some(group), true) => {
                let mut tensor = Tensor::from_slice(&all);
                group.all_reduce_sum_within(&mut tensor, LEADER_WORK_TIMEOUT)?;
                Vec::<f64>::try_from(&tensor).map_err(|source| TrainError::Torch {
                    context: "reading a summed tensor".into(),
                    source,
                })?
            }
            _ => self.sum(&all)?,
        };
        let ranks = summed
            .split_off(values.len())
            .iter()
            .enumerate()
            .filter(|(_, f)| **f > 0.0)
            .map(|(r, _)| r)
            .collect();
        Ok((summed, ranks))
    }

    /// An error naming `failed` ranks, if any.
    fn stop_for(&self, operation: &'static str, failed: &[usize]) -> Result<(), TrainError> {
        if failed.is_empty() {
            return Ok(());
        }
        let ranks: Vec<String> = failed.iter().map(usize::to_string).collect();
        Err(TrainError::from(ModelError::Distributed {
            rank: Some(self.rank()),
            operation,
            reason: format!(
                "rank {} failed (its own error says why); stopping with it",
                ranks.join(", ")
            ),
        }))
    }

    /// Checks that every rank passes the same `fingerprint` of `what`, and
    /// names the first rank that differs from rank 0.
    ///
    /// # Errors
    /// [`ModelError::Distributed`] naming that rank; as [`Self::sum`].
    pub fn check_same(&self, what: &str, fingerprint: u64) -> Result<(), TrainError> {
        match &self.group {
            Some(group) => Ok(group.check_same(what, fingerprint)?),
            None => Ok(()),
        }
    }

    /// Makes every rank's `params` equal to rank 0's (sent in buckets).
    ///
    /// # Errors
    /// As [`Self::sum`].
    pub fn broadcast(&self, params: &[(String, Tensor)]) -> Result<(), TrainError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let _guard = tch::no_grad_guard();
        let tensors: Vec<Tensor> = params.iter().map(|(_, p)| p.shallow_clone()).collect();
        for_each_bucket(&tensors, group.device(), |flat| {
            Ok(group.broadcast(flat, 0)?)
        })
    }

    /// Sums the gradients of `params` (sorted by name, the same list on
    /// every rank) over the ranks, in place. A parameter without a gradient
    /// here but with one elsewhere gets the others' sum; one with none
    /// anywhere keeps none (the optimizer skips it, as it would alone).
    ///
    /// # Errors
    /// As [`Self::sum`].
    pub fn sum_gradients(&self, params: &[(String, Tensor)]) -> Result<(), TrainError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let defined: Vec<f64> = params
            .iter()
            .map(|(_, p)| f64::from(u8::from(p.grad().defined())))
            .collect();
        let defined = self.sum(&defined)?;
        for ((_, p), anywhere) in params.iter().zip(&defined) {
            if *anywhere > 0.0 && !p.grad().defined() {
                // Autograd creates the gradient; zeros add nothing to the sum.
                (p * 0.0).sum(Kind::Float).backward();
            }
        }
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> = params
            .iter()
            .zip(&defined)
            .filter(|(_, anywhere)| **anywhere > 0.0)
            .map(|((_, p), _)| p.grad())
            .collect();
        for_each_bucket(&grads, group.device(), |flat| self.all_reduce(group, flat))
    }

    /// An all-reduce (sum) of `tensor`, counted in [`Self::take_traffic`].
    fn all_reduce(&self, group: &ProcessGroup, tensor: &mut Tensor) -> Result<(), TrainError> {
        let started = Instant::now();
        group.all_reduce_sum(tensor)?;
        let mut traffic = self.traffic.get();
        traffic.all_reduced_bytes += (tensor.numel() * tensor.kind().elt_size_in_bytes()) as u64;
        traffic.seconds += started.elapsed().as_secs_f64();
        self.traffic.set(traffic);
        Ok(())
    }

    /// The all-reduce traffic since the last call (none alone), and a new count.
    pub fn take_traffic(&self) -> Option<Traffic> {
        self.group.as_ref()?;
        Some(self.traffic.replace(Traffic::default()))
    }

    /// Waits for every rank.
    ///
    /// # Errors
    /// As [`Self::sum`].
    pub fn barrier(&self) -> Result<(), TrainError> {
        match &self.group {
            Some(group) => Ok(group.barrier()?),
            None => Ok(()),
        }
    }
}

/// Copies `tensors` into flat f32 buckets on `device` (the group's) of at
/// most [`BUCKET_VALUES`] values, hands each to `exchange`, and copies the
/// result back in place.
fn for_each_bucket(
    tensors: &[Tensor],
    device: Device,
    mut exchange: impl FnMut(&mut Tensor) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let mut start = 0;
    while start < tensors.len() {
        let mut end = start;
        let mut values = 0;
        while end < tensors.len()
            && (end == start || values + tensors[end].numel() as i64 <= BUCKET_VALUES)
        {
            values += tensors[end].numel() as i64;
            end += 1;
        }
        let parts: Vec<Tensor> = tensors[start..end]
            .iter()
            .map(|t| t.to_device(device).to_kind(Kind::Float).reshape([-1]))
            .collect();
        let mut flat = Tensor::cat(&parts, 0);
        exchange(&mut flat)?;
        let mut offset = 0;
        for t in &tensors[start..end] {
            let n = t.numel() as i64;
            let part = flat
                .narrow(0, offset, n)
                .view(t.size().as_slice())
                .to_kind(t.kind())
                .to_device(t.device());
            t.shallow_clone().copy_(&part);
            offset += n;
        }
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_cover_every_tensor_once_in_order() {
        let tensors: Vec<Tensor> = (1..=4i64)
            .map(|n| Tensor::arange(n * 3, (Kind::Float, Device::Cpu)).view([n, 3]))
            .collect();
        let before: Vec<Vec<f32>> = tensors
            .iter()
            .map(|t| Vec::<f32>::try_from(&t.reshape([-1])).unwrap())
            .collect();
        let mut seen = 0;
        for_each_bucket(&tensors, Device::Cpu, |flat| {
            seen += flat.numel();
            *flat *= 2.0;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 3 * (1 + 2 + 3 + 4));
        for (t, b) in tensors.iter().zip(&before) {
            let after = Vec::<f32>::try_from(&t.reshape([-1])).unwrap();
            assert_eq!(after, b.iter().map(|v| v * 2.0).collect::<Vec<_>>());
        }
    }

    #[test]
    fn one_process_communicates_nothing() {
        let replicas = Replicas::single();
        assert_eq!((replicas.rank(), replicas.size()), (0, 1));
        assert!(replicas.leader());
        assert_eq!(replicas.sum(&[1.5, 2.0]).unwrap(), [1.5, 2.0]);
        assert!(replicas.any(true).unwrap());
        let err: Result<(), TrainError> = Err(TrainError::Config {
            path: "x".into(),
            reason: "bad".into(),
        });
        assert!(replicas.settle("work", err).is_err());
        replicas.check_same("configuration", 7).unwrap();
    }
}
