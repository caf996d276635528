//! Image preprocessing as transformers' `BlipImageProcessor`: decode, convert
//! to RGB, resize with Pillow's filter ([`crate::resize`]), rescale to
//! `[0, 1]`, normalise with the checkpoint's mean and standard deviation,
//! channels first. Settings come from `preprocessor_config.json`.

use std::path::Path;

use medcap_io::config::InvalidConfig;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::ModelError;
use crate::resize::{Filter, resize_rgb};

/// `size` as the file may hold it: one side, or height and width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// A square of this side.
    Square(i64),
    /// Explicit height and width.
    HeightWidth {
        /// Rows.
        height: i64,
        /// Columns.
        width: i64,
    },
}

/// The fields of `preprocessor_config.json` BLIP uses, with
/// `BlipImageProcessor`'s defaults for missing keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageProcessorConfig {
    /// Whether to resize.
    pub do_resize: bool,
    /// Target size.
    pub size: SizeSpec,
    /// Pillow filter code (3: bicubic, 2: bilinear).
    pub resample: i64,
    /// Whether to multiply by `rescale_factor`.
    pub do_rescale: bool,
    /// Usually 1/255.
    pub rescale_factor: f64,
    /// Whether to normalise.
    pub do_normalize: bool,
    /// Per-channel mean.
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation.
    pub image_std: [f64; 3],
    /// Whether to convert to RGB first (always done here: the model takes 3 channels).
    pub do_convert_rgb: bool,
    /// Kept so that a saved file is read back by transformers as the same class.
    pub image_processor_type: String,
    /// Kept for transformers' `AutoProcessor`.
    pub processor_class: String,
}

impl Default for ImageProcessorConfig {
    fn default() -> Self {
        Self {
            do_resize: true,
            size: SizeSpec::HeightWidth {
                height: 384,
                width: 384,
            },
            resample: 3,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            // OpenAI CLIP's statistics, BLIP's defaults.
            image_mean: [0.48145466, 0.4578275, 0.40821073],
            image_std: [0.26862954, 0.26130258, 0.27577711],
            do_convert_rgb: true,
            image_processor_type: "BlipImageProcessor".into(),
            processor_class: "BlipProcessor".into(),
        }
    }
}

/// A decoded RGB image: decoding and the conversion to RGB follow Pillow
/// (see [`medcap_image`]), so that `RgbImage::open` gives the pixels
/// transformers' processor starts from.
pub use medcap_image::{ImageError, RgbImage};

/// Turns images into the model's `pixel_values`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    config: ImageProcessorConfig,
    filter: Filter,
}

impl ImageProcessor {
    /// Checks `config` (a supported filter, a positive size).
    ///
    /// # Errors
    /// The key that breaks a rule.
    pub fn new(config: ImageProcessorConfig) -> Result<Self, InvalidConfig> {
        let filter = Filter::from_pillow_code(config.resample).ok_or_else(|| {
            InvalidConfig::new(
                "resample",
                format!(
                    "{} is not supported (3: bicubic, 2: bilinear)",
                    config.resample
                ),
            )
        })?;
        let (h, w) = size_of(config.size);
        if h <= 0 || w <= 0 {
            return Err(InvalidConfig::new(
                "size",
                format!("{h}x{w} is not positive"),
            ));
        }
        if config.image_std.contains(&0.0) {
            return Err(InvalidConfig::new("image_std", "has a zero"));
        }
        Ok(Self { config, filter })
    }

    /// Reads `dir/preprocessor_config.json`, or the defaults with
    /// `image_size` when the file is absent.
    pub fn from_dir(dir: &Path, image_size: i64) -> Result<Self, ModelError> {
        let path = dir.join("preprocessor_config.json");
        let config = if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
                path: path.clone(),
                source,
            })?;
            medcap_io::config::parse(&text, medcap_io::config::Format::Json, &path)?
        } else {
            ImageProcessorConfig {
                size: SizeSpec::HeightWidth {
                    height: image_size,
                    width: image_size,
                },
                ..Default::default()
            }
        };
        Self::new(config).map_err(|source| {
            ModelError::ConfigFile(medcap_io::config::ConfigError::Invalid { path, source })
        })
    }

    /// Writes `dir/preprocessor_config.json` (atomically).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        Ok(medcap_io::write_json_atomic(
            &dir.join("preprocessor_config.json"),
            &self.config,
        )?)
    }

    /// The settings.
    pub fn config(&self) -> &ImageProcessorConfig {
        &self.config
    }

    /// Output `(height, width)` (the input's own size when resizing is off).
    pub fn output_size(&self) -> (i64, i64) {
        size_of(self.config.size)
    }

    /// The resize step alone: `image` at [`Self::output_size`] with the
    /// configured filter, byte for byte as Pillow's `Image.resize` (the
    /// call transformers' `BlipImageProcessor.resize` makes).
    pub fn resize(&self, image: &RgbImage) -> RgbImage {
        let (h, w) = self.output_size();
        let (h, w) = (h as usize, w as usize);
        RgbImage {
            width: w,
            height: h,
            pixels: resize_rgb(&image.pixels, image.width, image.height, w, h, self.filter),
        }
    }

    /// One image as `3 * height * width` values, channels first.
    pub fn process(&self, image: &RgbImage) -> (Vec<f32>, usize, usize) {
        let resized;
        let image = if self.config.do_resize {
            resized = self.resize(image);
            &resized
        } else {
            image
        };
        let (pixels, width, height) = (&image.pixels, image.width, image.height);
        let plane = width * height;
        let mut out = vec![0f32; 3 * plane];
        let c = &self.config;
        for (i, rgb) in pixels.chunks_exact(3).enumerate() {
            for ch in 0..3 {
                // transformers rescales in float64, casts to float32, then
                // normalises in float32: the same rounding steps here.
                let mut v = if c.do_rescale {
                    (f64::from(rgb[ch]) * c.rescale_factor) as f32
                } else {
                    f32::from(rgb[ch])
                };
                if c.do_normalize {
                    v = (v - c.image_mean[ch] as f32) / c.image_std[ch] as f32;
                }
                out[ch * plane + i] = v;
            }
        }
        (out, height, width)
    }

    /// `pixel_values` `[batch, 3, height, width]` for images resized to one
    /// size (with resizing off, all images must already share a size).
    pub fn pixel_values(&self, images: &[RgbImage]) -> Result<Tensor, ModelError> {
        let mut data = Vec::new();
        let mut shape = None;
        for image in images {
            let (values, h, w) = self.process(image);
            if shape.is_some_and(|s| s != (h, w)) {
                return Err(ModelError::Shape {
                    what: "images in one batch",
                    expected: format!("one size ({shape:?})"),
                    found: vec![h as i64, w as i64],
                });
            }
            shape = Some((h, w));
            data.extend(values);
        }
        let (h, w) = shape.unwrap_or((0, 0));
        Ok(Tensor::from_slice(&data).view([images.len() as i64, 3, h as i64, w as i64]))
    }
}

fn size_of(size: SizeSpec) -> (i64, i64) {
    match size {
        SizeSpec::Square(side) => (side, side),
        SizeSpec::HeightWidth { height, width } => (height, width),
    }
}
