//! Ready-to-use BLIP from a checkpoint directory: the model with its
//! tokenizer and image processor, for captioning ([`Captioner`]) and for
//! image-text matching ([`Matcher`]).

use std::path::Path;

use tch::{Device, Tensor};

use crate::blip::{BlipConfig, BlipForConditionalGeneration, BlipForImageTextRetrieval};
use crate::distributed::ProcessGroup;
use crate::error::ModelError;
use crate::generation::GenerationConfig;
use crate::preprocess::{ImageProcessor, RgbImage};
use crate::tokenizer::BlipTokenizer;

/// The tokenizer and image processor files of a checkpoint directory.
fn processors(
    dir: &Path,
    config: &BlipConfig,
) -> Result<(BlipTokenizer, ImageProcessor), ModelError> {
    Ok((
        BlipTokenizer::from_dir(dir, &config.text_config)?,
        ImageProcessor::from_dir(dir, config.vision_config.image_size)?,
    ))
}

/// What a rank of a sharded run sends for its batch: one caption or error
/// message per file, or the batch's own failure.
type Shared = Result<Vec<Result<Caption, String>>, String>;

/// One generated caption.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Caption {
    /// The whole sequence as transformers' `generate` returns it: `[DEC]`
    /// (30522), the prompt's word pieces, the new tokens, `[SEP]`.
    pub token_ids: Vec<i64>,
    /// The new tokens as text (the prompt is removed by token count, not
    /// by characters), special tokens dropped.
    pub text: String,
}

/// A captioning checkpoint with its tokenizer and image processor.
#[derive(Debug)]
pub struct Captioner {
    model: BlipForConditionalGeneration,
    tokenizer: BlipTokenizer,
    images: ImageProcessor,
}

impl Captioner {
    /// Loads `dir` (`config.json`, `model.safetensors`, `tokenizer.json`,
    /// `preprocessor_config.json`) onto `device`.
    ///
    /// ```no_run
    /// use medcap_model::{generation::GenerationConfig, pipeline::Captioner, preprocess::RgbImage};
    ///
    /// let captioner = Captioner::from_dir("blip-image-captioning-base".as_ref(), tch::Device::Cpu)?;
    /// let image = RgbImage::open("figure.png".as_ref())?;
    /// let captions = captioner.caption(&[image], None, &GenerationConfig::default())?;
    /// println!("{}", captions[0].text);
    /// # Ok::<(), medcap_model::ModelError>(())
    /// ```
    pub fn from_dir(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (model, _) = BlipForConditionalGeneration::from_dir(dir, device)?;
        Self::from_parts(model, dir)
    }

    /// Wraps a model already in memory, with the tokenizer and image
    /// processor files of `dir`.
    pub fn from_parts(model: BlipForConditionalGeneration, dir: &Path) -> Result<Self, ModelError> {
        let (tokenizer, images) = processors(dir, model.config())?;
        Ok(Self {
            model,
            tokenizer,
            images,
        })
    }

    /// The model.
    pub fn model(&self) -> &BlipForConditionalGeneration {
        &self.model
    }

    /// The model, mutably (precision changes).
    pub fn model_mut(&mut self) -> &mut BlipForConditionalGeneration {
        &mut self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &BlipTokenizer {
        &self.tokenizer
    }

    /// The image processor.
    pub fn image_processor(&self) -> &ImageProcessor {
        &self.images
    }

    /// The decoding settings transformers' plain `generate(**inputs)` uses
    /// with this checkpoint and `prompt`: the defaults, changed by what its
    /// `text_config` stores ([`crate::generation::StoredGeneration::resolve`]),
    /// and the stored keys that changed them. Explicit settings go on top;
    /// the caller's own `max_new_tokens`, if any, is given here, since it
    /// replaces the model's length rule (whose `max_length` may leave no
    /// room after a long prompt).
    ///
    /// # Errors
    /// As [`crate::generation::StoredGeneration::resolve`], and the
    /// tokenizer's error on the prompt.
    pub fn model_generation(
        &self,
        prompt: Option<&str>,
        max_new_tokens: Option<usize>,
    ) -> Result<(GenerationConfig, Vec<String>), ModelError> {
        let prompt_len = self.tokenizer.decoder_prompt(prompt)?.len();
        self.model
            .config()
            .text_config
            .generation
            .resolve(prompt_len, max_new_tokens)
    }

    /// Captions `images` as one batch, each starting with `prompt` if given.
    pub fn caption(
        &self,
        images: &[RgbImage],
        prompt: Option<&str>,
        config: &GenerationConfig,
    ) -> Result<Vec<Caption>, ModelError> {
        let pixels = self.images.pixel_values(images)?;
        self.caption_pixels(&pixels, prompt, config, false)
    }

    /// Captions image files in batches of `batch_size`, in input order:
    /// each batch's files are decoded (medcap-image, as Pillow), the readable
    /// ones captioned together, and `each_batch` receives the batch's paths
    /// with one result per path, a file that cannot be read or decoded as
    /// its [`ModelError::Image`] in its place. So output can be written as
    /// it comes, line N about file N, and one bad file costs only itself.
    ///
    /// ```no_run
    /// use medcap_model::{generation::GenerationConfig, pipeline::Captioner};
    ///
    /// let captioner = Captioner::from_dir("blip-image-captioning-base".as_ref(), tch::Device::Cpu)?;
    /// let files = ["a.png", "b.jpg"];
    /// captioner.caption_files(&files, None, &GenerationConfig::default(), 8, |paths, results| {
    ///     for (path, result) in paths.iter().zip(results) {
    ///         match result {
    ///             Ok(caption) => println!("{path}\t{}", caption.text),
    ///             Err(err) => eprintln!("{err}"),
    ///         }
    ///     }
    ///     Ok::<(), medcap_model::ModelError>(())
    /// })?;
    /// # Ok::<(), medcap_model::ModelError>(())
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Generation`] for a `batch_size` of 0; the model's
    /// error when captioning a batch fails (a device or shape failure, which
    /// would fail every batch); `each_batch`'s own error, which stops the run.
    pub fn caption_files<P, E>(
        &self,
        paths: &[P],
        prompt: Option<&str>,
        config: &GenerationConfig,
        batch_size: usize,
        mut each_batch: impl FnMut(&[P], Vec<Result<Caption, ModelError>>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        P: AsRef<Path>,
        E: From<ModelError>,
    {
        if batch_size == 0 {
            return Err(ModelError::Generation("the batch size must be at least 1".into()).into());
        }
        for chunk in paths.chunks(batch_size) {
            let results = self.caption_chunk(chunk, prompt, config)?;
            each_batch(chunk, results)?;
        }
        Ok(())
    }

    /// [`Self::caption_files`] shared among the processes of `group`: the
    /// same batches (of `batch_size`, in input order) dealt to the ranks in
    /// turn, each rank captioning its own; after every round the results
    /// are gathered and rank 0's `each_batch` receives every batch of the
    /// round in input order, each input exactly once, a file another rank
    /// could not read as [`ModelError::OnRank`] in its place. On the other
    /// ranks `each_batch` is never called. Every caption equals the one
    /// process's, since each batch is the same batch.
    ///
    /// # Errors
    /// As [`Self::caption_files`], on every rank when any rank's batch fails
    /// (naming it); [`ModelError::Distributed`] when a peer is lost.
    pub fn caption_files_sharded<P, E>(
        &self,
        group: &ProcessGroup,
        paths: &[P],
        prompt: Option<&str>,
        config: &GenerationConfig,
        batch_size: usize,
        mut each_batch: impl FnMut(&[P], Vec<Result<Caption, ModelError>>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        P: AsRef<Path>,
        E: From<ModelError>,
    {
        if batch_size == 0 {
            return Err(ModelError::Generation("the batch size must be at least 1".into()).into());
        }
        let batches: Vec<&[P]> = paths.chunks(batch_size).collect();
        for round in batches.chunks(group.size()) {
            // What this rank sends: its batch's results, or the failure of
            // the whole batch (a device error) so that every rank stops.
            let shared: Shared = match round.get(group.rank()) {
                None => Ok(Vec::new()),
                Some(chunk) => match self.caption_chunk(chunk, prompt, config) {
                    Ok(results) => Ok(results
                        .into_iter()
                        .map(|r| r.map_err(|e| e.to_string()))
                        .collect()),
                    Err(e) => Err(e.to_string()),
                },
            };
            let bytes =
                serde_json::to_vec(&shared).map_err(|e| ModelError::Generation(e.to_string()))?;
            let gathered = group.all_gather_bytes(&bytes)?;
            let mut received = Vec::with_capacity(round.len());
            for (rank, bytes) in gathered.iter().enumerate().take(round.len()) {
                let shared: Shared = serde_json::from_slice(bytes).map_err(|e| {
                    ModelError::Generation(format!("rank {rank} sent unreadable results: {e}"))
                })?;
                match shared {
                    Ok(results) => received.push(results),
                    Err(message) => {
                        return Err(ModelError::OnRank { rank, message }.into());
                    }
                }
            }
            if group.rank() != 0 {
                continue;
            }
            for (rank, (chunk, results)) in round.iter().zip(received).enumerate() {
                let results = results
                    .into_iter()
                    .map(|r| r.map_err(|message| ModelError::OnRank { rank, message }))
                    .collect();
                each_batch(chunk, results)?;
            }
        }
        Ok(())
    }

    /// One batch of [`Self::caption_files`]: each file decoded (medcap-image,
    /// as Pillow), the readable ones captioned together, one result per
    /// file in order.
    fn caption_chunk<P: AsRef<Path>>(
        &self,
        chunk: &[P],
        prompt: Option<&str>,
        config: &GenerationConfig,
    ) -> Result<Vec<Result<Caption, ModelError>>, ModelError> {
        // The readable images, and in input order what each file gave.
        let mut images = Vec::with_capacity(chunk.len());
        let mut unreadable: Vec<Option<ModelError>> = Vec::with_capacity(chunk.len());
        for path in chunk {
            match RgbImage::open(path.as_ref()) {
                Ok(image) => {
                    images.push(image);
                    unreadable.push(None);
                }
                Err(e) => unreadable.push(Some(e.into())),
            }
        }
        let mut captions = if images.is_empty() {
            Vec::new()
        } else {
            self.caption(&images, prompt, config)?
        }
        .into_iter();
        let mut results = Vec::with_capacity(chunk.len());
        for failure in unreadable {
            results.push(match failure {
                Some(e) => Err(e),
                None => Ok(captions.next().ok_or_else(|| {
                    ModelError::Generation("the model returned fewer captions than images".into())
                })?),
            });
        }
        Ok(results)
    }

    /// Captions preprocessed `pixel_values`; `interpolate` lets them differ
    /// from the configured size.
    pub fn caption_pixels(
        &self,
        pixel_values: &Tensor,
        prompt: Option<&str>,
        config: &GenerationConfig,
        interpolate: bool,
    ) -> Result<Vec<Caption>, ModelError> {
        let start = self.tokenizer.decoder_prompt(prompt)?;
        let embeds = {
            let _no_grad = tch::no_grad_guard();
            self.model.encode_images(pixel_values, interpolate)?
        };
        let sequences = self.model.generate(&embeds, &start, config)?;
        sequences
            .into_iter()
            .map(|token_ids| {
                let text = self
                    .tokenizer
                    .decode(&token_ids[start.len().min(token_ids.len())..])?;
                Ok(Caption { token_ids, text })
            })
            .collect()
    }
}

/// ITM and ITC scores of one image with one text.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatchScores {
    /// ITM probability that the text matches the image.
    pub itm_probability: f32,
    /// ITC cosine similarity of the projected image and text features.
    pub itc_similarity: f32,
}

/// A retrieval checkpoint with its tokenizer and image processor.
#[derive(Debug)]
pub struct Matcher {
    model: BlipForImageTextRetrieval,
    tokenizer: BlipTokenizer,
    images: ImageProcessor,
}

impl Matcher {
    /// Loads a `blip-itm-*` directory onto `device`.
    pub fn from_dir(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (model, _) = BlipForImageTextRetrieval::from_dir(dir, device)?;
        let (tokenizer, images) = processors(dir, model.config())?;
        Ok(Self {
            model,
            tokenizer,
            images,
        })
    }

    /// The image and text processors.
    pub fn image_processor(&self) -> &ImageProcessor {
        &self.images
    }

    /// ITC image features `[images, image_text_hidden_size]`
    /// (L2-normalised) of preprocessed `pixel_values`.
    ///
    /// # Errors
    /// [`ModelError::Shape`] / [`ModelError::ImageSize`] for pixel values
    /// of another shape.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        let _no_grad = tch::no_grad_guard();
        let embeds = self.model.encode_images(pixel_values, false)?;
        Ok(self.model.image_features(&embeds))
    }

    /// ITC text features `[texts, image_text_hidden_size]` (L2-normalised);
    /// texts longer than the text encoder's positions are cut to them.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when a text cannot be tokenized.
    pub fn text_features(&self, texts: &[&str]) -> Result<Tensor, ModelError> {
        let _no_grad = tch::no_grad_guard();
        let batch = self
            .tokenizer
            .batch(texts, Some(self.tokenizer.max_positions()))?;
        Ok(self
            .model
            .text_features(&batch.input_ids, &batch.attention_mask))
    }

    /// Scores `image` against every text (texts start with `[CLS]`, as in
    /// transformers; padding is masked).
    pub fn score(&self, image: &RgbImage, texts: &[&str]) -> Result<Vec<MatchScores>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let _no_grad = tch::no_grad_guard();
        let pixels = self.images.pixel_values(std::slice::from_ref(image))?;
        let embeds = self.model.encode_images(&pixels, false)?;
        let batch = self.tokenizer.batch(texts, None)?;
        let n = texts.len() as i64;
        let repeated = embeds.expand([n, -1, -1], false);
        let itm = self
            .model
            .itm_probabilities(&repeated, &batch.input_ids, &batch.attention_mask)
            .select(1, 1);
        let image_features = self.model.image_features(&embeds);
        let text_features = self
            .model
            .text_features(&batch.input_ids, &batch.attention_mask);
        let itc = text_features.matmul(&image_features.tr()).squeeze_dim(1);
        let read = |t: Tensor| {
            Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(tch::Kind::Float)).map_err(
                |source| ModelError::Torch {
                    context: "reading scores".into(),
                    source,
                },
            )
        };
        let itm = read(itm)?;
        let itc = read(itc)?;
        Ok(itm
            .into_iter()
            .zip(itc)
            .map(|(itm_probability, itc_similarity)| MatchScores {
                itm_probability,
                itc_similarity,
            })
            .collect())
    }

    /// [`Self::score`] shared among the processes of `group`: each rank
    /// scores a contiguous share of `texts` (the first ranks one more when
    /// they do not divide), and every rank returns all the scores in input
    /// order. Scores equal one process's up to the last bits of f32 (a
    /// share is padded to its own longest text, and padding is masked).
    ///
    /// # Errors
    /// As [`Self::score`], on every rank when any rank fails (naming it);
    /// [`ModelError::Distributed`] when a peer is lost.
    pub fn score_sharded(
        &self,
        group: &ProcessGroup,
        image: &RgbImage,
        texts: &[&str],
    ) -> Result<Vec<MatchScores>, ModelError> {
        let (rank, size) = (group.rank(), group.size());
        let (base, extra) = (texts.len() / size, texts.len() % size);
        let start = rank * base + rank.min(extra);
        let end = start + base + usize::from(rank < extra);
        let mine: Result<Vec<MatchScores>, String> = self
            .score(image, &texts[start..end])
            .map_err(|e| e.to_string());
        let bytes = serde_json::to_vec(&mine).map_err(|e| ModelError::Generation(e.to_string()))?;
        let mut all = Vec::with_capacity(texts.len());
        for (from, bytes) in group.all_gather_bytes(&bytes)?.iter().enumerate() {
            let share: Result<Vec<MatchScores>, String> =
                serde_json::from_slice(bytes).map_err(|e| {
                    ModelError::Generation(format!("rank {from} sent unreadable scores: {e}"))
                })?;
            all.extend(share.map_err(|message| ModelError::OnRank {
                rank: from,
                message,
            })?);
        }
        Ok(all)
    }
}
