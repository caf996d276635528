//! The small BLIP configuration of the embedded run: the same architecture
//! as blip-image-captioning-base (ViT, BERT decoder with cross-attention,
//! tied LM head, bert-base-uncased vocabulary) at a width and depth that
//! train in minutes on a CPU.

use std::path::Path;

use medcap_model::blip::{BlipConfig, BlipForConditionalGeneration};
use medcap_model::preprocess::{ImageProcessor, ImageProcessorConfig, SizeSpec};
use tch::Device;

use crate::error::{StudyError, io};

/// The configuration: `width` for both towers, `layers` each, 4 heads,
/// patches of 16 pixels, a 64-token text limit.
pub fn small_config(image_size: i64, width: i64, layers: usize) -> BlipConfig {
    let mut c = BlipConfig::default();
    let v = &mut c.vision_config;
    v.hidden_size = width;
    v.intermediate_size = 2 * width;
    v.num_hidden_layers = layers;
    v.num_attention_heads = 4;
    v.image_size = image_size;
    v.patch_size = 16;
    v.initializer_range = 0.02;
    let t = &mut c.text_config;
    t.hidden_size = width;
    t.intermediate_size = 2 * width;
    t.num_hidden_layers = layers;
    t.num_attention_heads = 4;
    t.encoder_hidden_size = width;
    t.max_position_embeddings = 64;
    c.image_text_hidden_size = width;
    c
}

/// Writes a freshly initialised small model into `dir` with the
/// bert-base-uncased tokenizer files of `tokenizer_dir` and a preprocessor
/// for `image_size`: a directory `medcap caption` and transformers load.
pub fn create(
    dir: &Path,
    config: BlipConfig,
    tokenizer_dir: &Path,
    seed: u64,
) -> Result<(), StudyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    tch::manual_seed(seed as i64);
    let model = BlipForConditionalGeneration::new(config.clone(), Device::Cpu);
    {
        // libtorch initialises embeddings with N(0, 1); BERT uses N(0, 0.02),
        // which keeps the first logits of a tied head small.
        let _guard = tch::no_grad_guard();
        for (name, mut var) in model.vars().variables() {
            if name.contains("embeddings.word_embeddings")
                || name.contains("embeddings.position_embeddings")
            {
                let _ = var.g_mul_scalar_(0.02);
            }
        }
    }
    model.save(dir)?;
    for file in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    ] {
        let from = tokenizer_dir.join(file);
        if from.is_file() {
            std::fs::copy(&from, dir.join(file)).map_err(io(&from))?;
        }
    }
    let side = config.vision_config.image_size;
    let processor = ImageProcessor::new(ImageProcessorConfig {
        size: SizeSpec::HeightWidth {
            height: side,
            width: side,
        },
        ..Default::default()
    })
    .map_err(StudyError::Config)?;
    processor.save(dir)?;
    Ok(())
}
