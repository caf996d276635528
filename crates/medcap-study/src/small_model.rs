//! The small BLIP configuration of the embedded run: the same architecture
//! as blip-image-captioning-base (ViT, BERT decoder with cross-attention,
//! tied LM head, bert-base-uncased word pieces) at a width and depth that
//! train in minutes on a CPU, over the part of the vocabulary its corpora use.

use std::path::Path;

use medcap_model::blip::{BlipConfig, BlipForConditionalGeneration};
use medcap_model::preprocess::{ImageProcessor, ImageProcessorConfig, SizeSpec};
use medcap_model::tokenizer::{VocabularySubset, write_vocabulary_subset};
use tch::Device;

use crate::error::{StudyError, io};

/// The configuration: `width` for both towers, `layers` each, 4 heads,
/// square patches of `shape.patch_size` pixels, a 64-token text limit, the word pieces of `vocab`
/// with `[DEC]` and `[ENC]` after them (as the Hub checkpoints place them
/// after bert-base-uncased's 30,522).
pub fn small_config(shape: SmallShape, vocab: &VocabularySubset) -> BlipConfig {
    let SmallShape {
        image_size,
        patch_size,
        width,
        layers,
    } = shape;
    let mut c = BlipConfig::default();
    let v = &mut c.vision_config;
    v.hidden_size = width;
    v.intermediate_size = 2 * width;
    v.num_hidden_layers = layers;
    v.num_attention_heads = 4;
    v.image_size = image_size;
    v.patch_size = patch_size;
    v.initializer_range = 0.02;
    let t = &mut c.text_config;
    t.hidden_size = width;
    t.intermediate_size = 2 * width;
    t.num_hidden_layers = layers;
    t.num_attention_heads = 4;
    t.encoder_hidden_size = width;
    t.max_position_embeddings = 64;
    t.vocab_size = vocab.len + 2;
    t.bos_token_id = vocab.len;
    t.sep_token_id = vocab.sep;
    t.eos_token_id = Some(vocab.sep);
    t.pad_token_id = vocab.pad;
    c.image_text_hidden_size = width;
    c
}

/// The shape of the small model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmallShape {
    /// Image side in pixels.
    pub image_size: i64,
    /// Patch side in pixels; divides `image_size`.
    pub patch_size: i64,
    /// Width of both towers.
    pub width: i64,
    /// Layers of each tower.
    pub layers: usize,
}

/// Writes a freshly initialised small model into `dir`: the tokenizer of
/// `tokenizer_dir` (bert-base-uncased word pieces) cut down to the pieces of
/// `texts` (the captions it will be trained on, see
/// [`write_vocabulary_subset`]), a preprocessor for `shape.image_size`,
/// weights drawn from `seed`. A directory `medcap caption` and transformers
/// load. Returns its configuration.
pub fn create<'a>(
    dir: &Path,
    shape: SmallShape,
    tokenizer_dir: &Path,
    texts: impl IntoIterator<Item = &'a str>,
    seed: u64,
) -> Result<BlipConfig, StudyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let vocab = write_vocabulary_subset(tokenizer_dir, dir, texts)?;
    let config = small_config(shape, &vocab);
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
    let side = config.vision_config.image_size;
    let processor = ImageProcessor::new(ImageProcessorConfig {
        size: SizeSpec::HeightWidth {
            height: side,
            width: side,
        },
        ..Default::default()
    })
    .map_err(|source| medcap_io::config::ConfigError::Invalid {
        path: dir.join("preprocessor_config.json"),
        source,
    })?;
    processor.save(dir)?;
    Ok(config)
}
