//! The study's FT-2 fine-tuning: BLIP on 2,800 chest figures with the
//! study's recipe (micro-batches of 4 accumulated 4 times, Adam, the margin
//! contrastive loss with the captioning loss). With no options it runs on the
//! embedded synthetic data set with a small model in minutes on a CPU:
//!
//!     cargo run --release --example finetune_ft2 -- --out DIR
//!
//! At full size on real data:
//!
//!     cargo run --release --example finetune_ft2 -- --medicat MEDICAT_DIR \
//!         --base-model blip-image-captioning-base --device cuda

#[path = "common/finetune.rs"]
mod finetune;

fn main() -> std::process::ExitCode {
    medcap_cli::logging::exit(finetune::main_for("ft2"))
}
