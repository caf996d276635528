//! Image preprocessing as transformers' `BlipImageProcessor` and
//! `CLIPImageProcessor`, and as open_clip's torchvision transform: decode,
//! convert to RGB, resize with Pillow's filter (`resize`) to a
//! fixed size or to a shortest side, cut out the centre (CLIP), rescale to
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
    /// The shorter side scaled to this length, the aspect ratio kept
    /// (`CLIPImageProcessor`'s `{"shortest_edge": N}`, torchvision's
    /// `Resize(N)`).
    ShortestEdge {
        /// Length of the shorter side after resizing.
        shortest_edge: i64,
    },
}

/// Whose arithmetic the steps after resizing follow where the references
/// differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// transformers' image processors: the crop starts at
    /// `floor((side - crop) / 2)`; rescaling multiplies by the factor in
    /// float64 and casts to float32.
    #[default]
    Transformers,
    /// torchvision's `CenterCrop` and `ToTensor` (open_clip's transform, and
    /// OpenAI CLIP's that CLIPScore's reference code uses): the crop starts
    /// at `round((side - crop) / 2)` with ties to even, as Python's `round`;
    /// rescaling divides by 255 in float32.
    Torchvision,
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
    /// Whether to cut `crop_size` out of the centre after resizing (CLIP).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub do_center_crop: bool,
    /// The centre crop's size (a single number: a square).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop_size: Option<SizeSpec>,
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
            do_center_crop: false,
            crop_size: None,
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
    convention: Convention,
}

impl ImageProcessor {
    /// Checks `config` (a supported filter, a positive size).
    ///
    /// # Errors
    /// The key that breaks a rule.
    pub fn new(mut config: ImageProcessorConfig) -> Result<Self, InvalidConfig> {
        let filter = Filter::from_pillow_code(config.resample).ok_or_else(|| {
            InvalidConfig::new(
                "resample",
                format!(
                    "{} is not supported (3: bicubic, 2: bilinear)",
                    config.resample
                ),
            )
        })?;
        // CLIPImageProcessor reads a single number as the shortest side
        // (transformers' `default_to_square=False`), BLIP's as a square.
        if config
            .image_processor_type
            .starts_with("CLIPImageProcessor")
            && let SizeSpec::Square(side) = config.size
        {
            config.size = SizeSpec::ShortestEdge {
                shortest_edge: side,
            };
        }
        let (h, w) = size_of(config.size);
        if h <= 0 || w <= 0 {
            return Err(InvalidConfig::new(
                "size",
                format!("{h}x{w} is not positive"),
            ));
        }
        if config.do_center_crop {
            let crop = config.crop_size.ok_or_else(|| {
                InvalidConfig::new("crop_size", "is missing while do_center_crop is true")
            })?;
            let (ch, cw) = size_of(crop);
            if ch <= 0 || cw <= 0 || matches!(crop, SizeSpec::ShortestEdge { .. }) {
                return Err(InvalidConfig::new(
                    "crop_size",
                    format!("{crop:?} is not a positive height and width"),
                ));
            }
        }
        if config.image_std.contains(&0.0) {
            return Err(InvalidConfig::new("image_std", "has a zero"));
        }
        Ok(Self {
            config,
            filter,
            convention: Convention::Transformers,
        })
    }

    /// The same settings with another reference's crop and rescaling
    /// arithmetic (see [`Convention`]).
    #[must_use]
    pub fn with_convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
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

    /// Output `(height, width)`: the crop's size when cropping, else the
    /// resize target (with a shortest side and no crop, the square of that
    /// side; images then keep their aspect ratio and differ in size).
    pub fn output_size(&self) -> (i64, i64) {
        match (self.config.do_center_crop, self.config.crop_size) {
            (true, Some(crop)) => size_of(crop),
            _ => size_of(self.config.size),
        }
    }

    /// `(height, width)` that resizing gives an image of `width` x `height`:
    /// the configured size, or the shorter side set to `shortest_edge` and
    /// the longer one to `int(shortest_edge * long / short)`, as
    /// transformers' `get_resize_output_image_size` and torchvision's
    /// `Resize` compute it.
    pub fn resize_target(&self, width: usize, height: usize) -> (usize, usize) {
        match self.config.size {
            SizeSpec::ShortestEdge { shortest_edge } => {
                let side = shortest_edge as usize;
                let (short, long) = if width <= height {
                    (width, height)
                } else {
                    (height, width)
                };
                if short == 0 {
                    return (height, width);
                }
                // Python's `int(a * b / c)`: a correctly rounded quotient, truncated.
                let other = ((side * long) as f64 / short as f64) as usize;
                if width <= height {
                    (other, side)
                } else {
                    (side, other)
                }
            }
            spec => {
                let (h, w) = size_of(spec);
                (h as usize, w as usize)
            }
        }
    }

    /// The resize step alone: `image` at [`Self::resize_target`] with the
    /// configured filter, byte for byte as Pillow's `Image.resize` (the
    /// call transformers' image processors and torchvision's `Resize` make).
    pub fn resize(&self, image: &RgbImage) -> RgbImage {
        let (h, w) = self.resize_target(image.width, image.height);
        RgbImage {
            width: w,
            height: h,
            pixels: resize_rgb(&image.pixels, image.width, image.height, w, h, self.filter),
        }
    }

    /// The centre `crop_height` x `crop_width` of `image`, zeros where the
    /// crop reaches past it (transformers' `center_crop` pads so; after a
    /// shortest-side resize to at least the crop it never does).
    fn center_crop(&self, image: &RgbImage, crop_height: usize, crop_width: usize) -> RgbImage {
        let offset = |side: usize, crop: usize| -> i64 {
            let diff = side as i64 - crop as i64;
            match self.convention {
                // Python's floor division.
                Convention::Transformers => diff.div_euclid(2),
                // Python's round(diff / 2.0): ties to even.
                Convention::Torchvision => (diff as f64 / 2.0).round_ties_even() as i64,
            }
        };
        let (top, left) = (
            offset(image.height, crop_height),
            offset(image.width, crop_width),
        );
        let mut pixels = vec![0u8; crop_height * crop_width * 3];
        for y in 0..crop_height {
            let sy = y as i64 + top;
            if sy < 0 || sy >= image.height as i64 {
                continue;
            }
            for x in 0..crop_width {
                let sx = x as i64 + left;
                if sx < 0 || sx >= image.width as i64 {
                    continue;
                }
                let from = (sy as usize * image.width + sx as usize) * 3;
                let to = (y * crop_width + x) * 3;
                pixels[to..to + 3].copy_from_slice(&image.pixels[from..from + 3]);
            }
        }
        RgbImage {
            width: crop_width,
            height: crop_height,
            pixels,
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
        let cropped;
        let image = match (self.config.do_center_crop, self.config.crop_size) {
            (true, Some(crop)) => {
                let (h, w) = size_of(crop);
                cropped = self.center_crop(image, h as usize, w as usize);
                &cropped
            }
            _ => image,
        };
        let (pixels, width, height) = (&image.pixels, image.width, image.height);
        let plane = width * height;
        let mut out = vec![0f32; 3 * plane];
        let c = &self.config;
        for (i, rgb) in pixels.chunks_exact(3).enumerate() {
            for ch in 0..3 {
                // transformers rescales in float64, casts to float32, then
                // normalises in float32; torchvision divides in float32:
                // the same rounding steps here.
                let mut v = match (c.do_rescale, self.convention) {
                    (false, _) => f32::from(rgb[ch]),
                    (true, Convention::Transformers) => {
                        (f64::from(rgb[ch]) * c.rescale_factor) as f32
                    }
                    (true, Convention::Torchvision) => f32::from(rgb[ch]) / 255.0,
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
        SizeSpec::Square(side)
        | SizeSpec::ShortestEdge {
            shortest_edge: side,
        } => (side, side),
        SizeSpec::HeightWidth { height, width } => (height, width),
    }
}
