//! Image–text encoders behind one trait, and reference-free caption scores
//! with them: CLIP in the Hugging Face layout ([`crate::clip`]), open_clip's
//! BiomedCLIP layout ([`crate::open_clip`]) and BLIP's ITC heads
//! ([`crate::pipeline::Matcher`]). [`load_encoder`] tells the layout from
//! the directory; [`ClipScorer`] decodes and preprocesses images in
//! parallel, embeds images and texts in batches (each distinct image and
//! text once) and hands the embeddings to medcap-metrics'
//! [`medcap_metrics::clipscore`] arithmetic.

use std::collections::HashMap;
use std::path::Path;

use medcap_metrics::clipscore::{
    ClipScoreForm, ClipScoreSettings, ClipScoreValue, EncoderLabel, clip_score, ref_clip_score,
};
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::clip::ClipModel;
use crate::error::ModelError;
use crate::open_clip::OpenClipModel;
use crate::pipeline::Matcher;
use crate::preprocess::{ImageProcessor, RgbImage};

/// How a text longer than the encoder's context is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextTruncation {
    /// The pieces are cut and the end token kept (OpenAI's `clip.tokenize(...,
    /// truncate=True)`, transformers' `truncation=True`, open_clip).
    #[default]
    KeepEnd,
    /// The ids are sliced at the context length, the end token lost, as
    /// torchmetrics' `CLIPScore` does (CLIP's layout only; the others cut as
    /// [`TextTruncation::KeepEnd`]).
    Slice,
}

/// An image–text encoder: embeddings of images and texts in one space.
pub trait ImageTextEncoder {
    /// The model's layout and name.
    fn label(&self) -> &EncoderLabel;
    /// How images become pixel values.
    fn processor(&self) -> &ImageProcessor;
    /// Image embeddings `[images, dim]` of preprocessed pixel values.
    ///
    /// # Errors
    /// [`ModelError`] when the pixel values do not fit the model.
    fn image_embeddings(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError>;
    /// Text embeddings `[texts, dim]`.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when a text cannot be tokenized.
    fn text_embeddings(
        &self,
        texts: &[&str],
        truncation: TextTruncation,
    ) -> Result<Tensor, ModelError>;
}

struct Clip {
    model: ClipModel,
    label: EncoderLabel,
}

impl ImageTextEncoder for Clip {
    fn label(&self) -> &EncoderLabel {
        &self.label
    }
    fn processor(&self) -> &ImageProcessor {
        self.model.processor()
    }
    fn image_embeddings(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        self.model.image_features_of_pixels(pixel_values)
    }
    fn text_embeddings(
        &self,
        texts: &[&str],
        truncation: TextTruncation,
    ) -> Result<Tensor, ModelError> {
        match truncation {
            TextTruncation::KeepEnd => self.model.text_features(texts),
            TextTruncation::Slice => self.model.text_features_sliced(texts),
        }
    }
}

struct OpenClip {
    model: OpenClipModel,
    label: EncoderLabel,
}

impl ImageTextEncoder for OpenClip {
    fn label(&self) -> &EncoderLabel {
        &self.label
    }
    fn processor(&self) -> &ImageProcessor {
        self.model.processor()
    }
    fn image_embeddings(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        self.model.image_features_of_pixels(pixel_values)
    }
    fn text_embeddings(&self, texts: &[&str], _: TextTruncation) -> Result<Tensor, ModelError> {
        self.model.text_features(texts)
    }
}

struct BlipItc {
    matcher: Matcher,
    label: EncoderLabel,
}

impl ImageTextEncoder for BlipItc {
    fn label(&self) -> &EncoderLabel {
        &self.label
    }
    fn processor(&self) -> &ImageProcessor {
        self.matcher.image_processor()
    }
    fn image_embeddings(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        self.matcher.image_features(pixel_values)
    }
    fn text_embeddings(&self, texts: &[&str], _: TextTruncation) -> Result<Tensor, ModelError> {
        self.matcher.text_features(texts)
    }
}

/// Loads the image–text encoder in `dir`: open_clip's layout when
/// `open_clip_config.json` is there, else by `config.json`'s `model_type`
/// (`clip`: Hugging Face CLIP; `blip`: BLIP's ITC heads, which only
/// retrieval checkpoints, `blip-itm-*`, have).
///
/// # Errors
/// [`ModelError::Config`] naming the directory and what was found there
/// when it is none of these; the loaders' errors otherwise.
pub fn load_encoder(dir: &Path, device: Device) -> Result<Box<dyn ImageTextEncoder>, ModelError> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    if dir.join("open_clip_config.json").is_file() {
        let (model, _) = OpenClipModel::from_dir(dir, device)?;
        let t = &model.config().model_cfg.text_cfg;
        let others: Vec<&str> = [t.hf_model_name.as_deref(), t.hf_tokenizer_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let label = EncoderLabel::new("open_clip", &name, &others);
        return Ok(Box::new(OpenClip { model, label }));
    }
    let config = dir.join("config.json");
    let model_type = std::fs::read_to_string(&config)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.get("model_type")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    match model_type.as_deref() {
        Some("clip") => {
            let (model, _) = ClipModel::from_dir(dir, device)?;
            let label = EncoderLabel::new("clip", &name, &[]);
            Ok(Box::new(Clip { model, label }))
        }
        Some("blip") => {
            let matcher = Matcher::from_dir(dir, device)?;
            let label = EncoderLabel::new("blip-itc", &name, &[]);
            Ok(Box::new(BlipItc { matcher, label }))
        }
        found => Err(ModelError::Config {
            path: dir.to_owned(),
            reason: format!(
                "not an image-text encoder: expected open_clip_config.json (open_clip, \
                 BiomedCLIP) or config.json with model_type clip or blip; found {}",
                describe(dir, found)
            ),
        }),
    }
}

/// What a directory holds, for an error about it.
fn describe(dir: &Path, model_type: Option<&str>) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return "no readable directory".into();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let files = if names.is_empty() {
        "no files".to_owned()
    } else {
        let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
        let more = names.len().saturating_sub(8);
        format!(
            "{}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    };
    match model_type {
        Some(t) => format!("config.json with model_type `{t}` ({files})"),
        None => files,
    }
}

/// Rows of an embedding matrix as vectors.
fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>, ModelError> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let size = t.size();
    let flat = Vec::<f32>::try_from(t.view([-1])).map_err(|source| ModelError::Torch {
        context: "reading embeddings".into(),
        source,
    })?;
    let dim = size.get(1).copied().unwrap_or(0).max(1) as usize;
    Ok(flat.chunks(dim).map(<[f32]>::to_vec).collect())
}

/// One preprocessed image: values, height, width.
type Processed = (Vec<f32>, usize, usize);

/// CLIPScore and RefCLIPScore with an [`ImageTextEncoder`].
pub struct ClipScorer {
    encoder: Box<dyn ImageTextEncoder>,
    settings: ClipScoreSettings,
    batch_size: usize,
}

impl ClipScorer {
    /// A scorer; `batch_size` images or texts go through the encoder at once.
    pub fn new(
        encoder: Box<dyn ImageTextEncoder>,
        settings: ClipScoreSettings,
        batch_size: usize,
    ) -> Self {
        Self {
            encoder,
            settings,
            batch_size: batch_size.max(1),
        }
    }

    /// The encoder's label.
    pub fn label(&self) -> &EncoderLabel {
        self.encoder.label()
    }

    /// The settings.
    pub fn settings(&self) -> &ClipScoreSettings {
        &self.settings
    }

    /// `settings.signature` for this encoder.
    pub fn signature(&self) -> String {
        self.settings.signature(self.encoder.label())
    }

    /// Embeddings of the images at `paths` (each distinct path once):
    /// decoded and preprocessed in parallel, embedded in batches. A file
    /// that cannot be read or decoded gives its error's text in its place.
    ///
    /// # Errors
    /// [`ModelError`] when the encoder fails on a batch.
    pub fn image_embeddings(
        &self,
        paths: &[&Path],
    ) -> Result<Vec<Result<Vec<f32>, String>>, ModelError> {
        let mut distinct: Vec<&Path> = Vec::new();
        let mut index: HashMap<&Path, usize> = HashMap::new();
        for p in paths {
            index.entry(p).or_insert_with(|| {
                distinct.push(p);
                distinct.len() - 1
            });
        }
        let processor = self.encoder.processor();
        let batch_size = self.batch_size;
        let mut embedded: Vec<Result<Vec<f32>, String>> = Vec::with_capacity(distinct.len());
        // The next batch is decoded and preprocessed (in parallel) while the
        // encoder runs on this one: decoding takes a tenth of the time and
        // libtorch leaves part of the cores idle between its operations.
        std::thread::scope(|scope| -> Result<(), ModelError> {
            let (send, receive) =
                std::sync::mpsc::sync_channel::<Vec<Result<Processed, String>>>(1);
            let distinct = &distinct;
            scope.spawn(move || {
                for chunk in distinct.chunks(batch_size) {
                    let pixels: Vec<Result<Processed, String>> = chunk
                        .par_iter()
                        .map(|p| {
                            RgbImage::open(p)
                                .map(|image| processor.process(&image))
                                .map_err(|e| e.to_string())
                        })
                        .collect();
                    // The receiver stops listening only on an error.
                    if send.send(pixels).is_err() {
                        return;
                    }
                }
            });
            for pixels in receive {
                embedded.extend(self.embed_processed(pixels)?);
            }
            Ok(())
        })?;
        Ok(paths.iter().map(|p| embedded[index[p]].clone()).collect())
    }

    /// One batch's embeddings, an error's text in place of a failed image.
    fn embed_processed(
        &self,
        pixels: Vec<Result<Processed, String>>,
    ) -> Result<Vec<Result<Vec<f32>, String>>, ModelError> {
        let ok: Vec<&Processed> = pixels.iter().filter_map(|p| p.as_ref().ok()).collect();
        let mut vectors = if ok.is_empty() {
            Vec::new()
        } else {
            let (h, w) = (ok[0].1, ok[0].2);
            let mut flat = Vec::with_capacity(ok.len() * 3 * h * w);
            for (values, ph, pw) in &ok {
                if (*ph, *pw) != (h, w) {
                    return Err(ModelError::Shape {
                        what: "preprocessed images",
                        expected: format!("one size ({h}x{w})"),
                        found: vec![*ph as i64, *pw as i64],
                    });
                }
                flat.extend_from_slice(values);
            }
            let t = Tensor::from_slice(&flat).view([ok.len() as i64, 3, h as i64, w as i64]);
            rows(&self.encoder.image_embeddings(&t)?)?
        }
        .into_iter();
        Ok(pixels
            .into_iter()
            .map(|p| match p {
                Ok(_) => Ok(vectors.next().unwrap_or_default()),
                Err(e) => Err(e),
            })
            .collect())
    }

    /// Embeddings of `texts` with the settings' prefix (each distinct text
    /// once, in batches).
    ///
    /// # Errors
    /// [`ModelError`] when the encoder fails.
    pub fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let prefixed: Vec<String> = texts
            .iter()
            .map(|t| format!("{}{t}", self.settings.prefix))
            .collect();
        let mut distinct: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for t in &prefixed {
            index.entry(t.as_str()).or_insert_with(|| {
                distinct.push(t);
                distinct.len() - 1
            });
        }
        // torchmetrics slices long texts (CLIP's layout).
        let truncation = if self.settings.form == ClipScoreForm::Torchmetrics {
            TextTruncation::Slice
        } else {
            TextTruncation::KeepEnd
        };
        // Batches of texts of like length, longest first, so that little of
        // a batch is padding (a text's embedding does not depend on its
        // batch: padding is masked).
        let lengths: Vec<usize> = distinct.iter().map(|t| t.len()).collect();
        let mut embedded: Vec<Vec<f32>> = vec![Vec::new(); distinct.len()];
        for batch in crate::batch::longest_first(&lengths, self.batch_size) {
            let texts: Vec<&str> = batch.iter().map(|&i| distinct[i]).collect();
            let vectors = rows(&self.encoder.text_embeddings(&texts, truncation)?)?;
            for (&i, v) in batch.iter().zip(vectors) {
                embedded[i] = v;
            }
        }
        Ok(prefixed
            .iter()
            .map(|t| embedded[index[t.as_str()]].clone())
            .collect())
    }

    /// Scores each caption: `images[i]` with `candidates[i]`, and
    /// RefCLIPScore against `references[i]` when it is not empty. A row
    /// whose image cannot be read holds that error (naming the file); the
    /// other rows are scored.
    ///
    /// # Errors
    /// [`ModelError`] when the encoder fails; lengths that differ are a
    /// [`ModelError::Shape`].
    pub fn score(
        &self,
        images: &[&Path],
        candidates: &[&str],
        references: &[Vec<&str>],
    ) -> Result<Vec<Result<ClipScoreValue, String>>, ModelError> {
        if images.len() != candidates.len() || references.len() != candidates.len() {
            return Err(ModelError::Shape {
                what: "images, candidates and references",
                expected: format!("{} of each", candidates.len()),
                found: vec![images.len() as i64, references.len() as i64],
            });
        }
        let image_vectors = self.image_embeddings(images)?;
        let caption_vectors = self.text_embeddings(candidates)?;
        let flat: Vec<&str> = references.iter().flatten().copied().collect();
        let reference_vectors = self.text_embeddings(&flat)?;
        let mut next = 0;
        let form = self.settings.form;
        Ok(image_vectors
            .into_iter()
            .zip(&caption_vectors)
            .zip(references)
            .map(|((image, caption), refs)| {
                let mine = &reference_vectors[next..next + refs.len()];
                next += refs.len();
                let image = image?;
                let clip_s = clip_score(&image, caption, form);
                let refs: Vec<&[f32]> = mine.iter().map(Vec::as_slice).collect();
                let ref_clip_s = form
                    .has_reference_form()
                    .then(|| ref_clip_score(clip_s, caption, &refs, self.settings.ref_form))
                    .flatten();
                Ok(ClipScoreValue { clip_s, ref_clip_s })
            })
            .collect())
    }
}

impl medcap_metrics::clipscore::ImageCaptionScorer for ClipScorer {
    fn score_captions(
        &self,
        images: &[&Path],
        candidates: &[&str],
        references: &[Vec<&str>],
    ) -> Result<Vec<Result<ClipScoreValue, String>>, String> {
        self.score(images, candidates, references)
            .map_err(|e| e.to_string())
    }
    fn embeddings(
        &self,
        images: &[&Path],
        texts: &[&str],
    ) -> Result<(Vec<Result<Vec<f32>, String>>, Vec<Vec<f32>>), String> {
        let images = self.image_embeddings(images).map_err(|e| e.to_string())?;
        let texts = self.text_embeddings(texts).map_err(|e| e.to_string())?;
        Ok((images, texts))
    }
    fn settings(&self) -> &ClipScoreSettings {
        &self.settings
    }
    fn encoder(&self) -> &EncoderLabel {
        self.encoder.label()
    }
}
