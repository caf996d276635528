//! The checkpoint policy and what a checkpoint holds. `latest` is written
//! every `checkpoint_every` optimizer steps (at every epoch's end when 0),
//! on an interrupt and at the end; `best` whenever validation finds a new
//! best loss. Each is a directory swapped in whole (medcap-io), holding the
//! model in the Hugging Face layout, its tokenizer and image processor, the
//! contrastive heads, the optimizer's moments and the trainer's state.

use std::path::PathBuf;

use super::heads::HEADS_FILE;
use super::{Outcome, Summary, Trainer};
use crate::error::TrainError;

/// The optimizer's moments in a checkpoint.
pub(super) const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The trainer's state in a checkpoint.
pub(super) const STATE_FILE: &str = "state.json";

/// When `latest` is written besides an interrupt and the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Every this many optimizer steps; 0: at the end of every epoch.
    pub every: usize,
}

impl CheckpointPolicy {
    /// Whether to write `latest` after optimizer step `step`.
    pub fn after_step(&self, step: usize) -> bool {
        self.every > 0 && step.is_multiple_of(self.every)
    }

    /// Whether to write `latest` at the end of an epoch.
    pub fn after_epoch(&self) -> bool {
        self.every == 0
    }
}

impl Trainer {
    /// Writes checkpoint `which` (rank 0 alone; the others wait for it and
    /// stop with it if it fails).
    pub(super) fn save_checkpoint(&mut self, which: &str) -> Result<PathBuf, TrainError> {
        self.state.world_size = Some(self.replicas.size());
        let written = if self.replicas.leader() {
            self.write_checkpoint(which)
        } else {
            Ok(self.run.checkpoint(which))
        };
        self.replicas.settle("writing a checkpoint", written)
    }

    fn write_checkpoint(&self, which: &str) -> Result<PathBuf, TrainError> {
        self.run.write_checkpoint(which, |dir| {
            self.model.save(dir)?;
            self.tokenizer.save(dir)?;
            self.processor.save(dir)?;
            if let Some(h) = &self.heads {
                h.save(&dir.join(HEADS_FILE))?;
            }
            self.optimizer.save(&dir.join(OPTIMIZER_FILE))?;
            Ok(medcap_io::write_json_atomic(
                &dir.join(STATE_FILE),
                &self.state,
            )?)
        })
    }

    pub(super) fn summary(&self, outcome: Outcome) -> Summary {
        let best = self.run.checkpoint("best");
        Summary {
            outcome,
            steps: self.state.step,
            best_val_loss: self.state.best_val_loss,
            run_dir: self.run.root().to_owned(),
            checkpoint: if best.join(STATE_FILE).is_file() {
                best
            } else {
                self.run.checkpoint("latest")
            },
            skipped_images: self.state.skipped_images,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_is_written_on_multiples_of_every_or_at_epoch_ends() {
        let every_3 = CheckpointPolicy { every: 3 };
        let steps: Vec<usize> = (1..=9).filter(|&s| every_3.after_step(s)).collect();
        assert_eq!(steps, [3, 6, 9]);
        assert!(!every_3.after_epoch());
        let per_epoch = CheckpointPolicy { every: 0 };
        assert!((1..=9).all(|s| !per_epoch.after_step(s)));
        assert!(per_epoch.after_epoch());
    }
}
