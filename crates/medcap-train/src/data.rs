//! Training data: caption CSVs written by `medcap prepare`, images decoded
//! and preprocessed ahead of the training step by worker threads, in a
//! seeded order that a resumed run reproduces exactly.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use medcap_dataset::split_csv::read_split_csv;
use medcap_model::preprocess::{ImageProcessor, RgbImage};
use medcap_rng::SplitMix64;
use rayon::prelude::*;

use crate::error::TrainError;

/// One image and its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionExample {
    /// The image file.
    pub image: PathBuf,
    /// The cleaned caption.
    pub caption: String,
}

/// Reads the training examples of a split CSV (at most `limit` rows),
/// through medcap-dataset's one split CSV reader: image paths are resolved
/// against the CSV's directory, rows with an empty image path or caption are
/// reported and skipped.
///
/// # Errors
/// [`TrainError::Data`] naming the CSV when it cannot be read or has no usable row.
pub fn read_examples(
    csv_path: &Path,
    limit: Option<usize>,
) -> Result<Vec<CaptionExample>, TrainError> {
    let rows = read_split_csv(csv_path).map_err(|e| TrainError::Data {
        path: csv_path.to_owned(),
        reason: e.to_string(),
    })?;
    let examples: Vec<CaptionExample> = rows
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|row| CaptionExample {
            image: PathBuf::from(row.image_path),
            caption: row.caption,
        })
        .collect();
    if examples.is_empty() {
        return Err(TrainError::Data {
            path: csv_path.to_owned(),
            reason: "no usable rows".into(),
        });
    }
    Ok(examples)
}

/// Training-time image changes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Augment {
    /// Random resized crop covering 50-100 % of the area (aspect 3/4 to 4/3).
    pub random_crop: bool,
    /// Mirror left-right with probability 1/2 (swaps anatomical sides!).
    pub horizontal_flip: bool,
}

/// A preprocessed micro-batch.
#[derive(Debug)]
pub struct Batch {
    /// `[n, 3, h, w]` values, channels first.
    pub pixels: Vec<f32>,
    /// Images in the batch (bad ones left out).
    pub len: usize,
    /// Height and width.
    pub size: (usize, usize),
    /// Captions, in batch order.
    pub captions: Vec<String>,
    /// Images that could not be read, with the reason.
    pub skipped: Vec<String>,
}

impl Batch {
    /// The pixels as a tensor `[n, 3, h, w]`.
    pub fn pixel_tensor(&self) -> tch::Tensor {
        tch::Tensor::from_slice(&self.pixels).view([
            self.len as i64,
            3,
            self.size.0 as i64,
            self.size.1 as i64,
        ])
    }
}

/// The order of examples in `epoch`: a shuffle seeded by the run seed and epoch.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    SplitMix64::for_item(seed, epoch as u64).shuffle(&mut order);
    order
}

/// Number of micro-batches in an epoch of `len` examples.
pub fn batches_per_epoch(len: usize, micro_batch: usize) -> usize {
    len.div_ceil(micro_batch)
}

fn crop(image: &RgbImage, x: usize, y: usize, w: usize, h: usize) -> RgbImage {
    let mut pixels = Vec::with_capacity(w * h * 3);
    for row in y..y + h {
        let start = (row * image.width + x) * 3;
        pixels.extend_from_slice(&image.pixels[start..start + w * 3]);
    }
    RgbImage {
        width: w,
        height: h,
        pixels,
    }
}

fn flip(image: &mut RgbImage) {
    for row in image.pixels.chunks_exact_mut(image.width * 3) {
        let w = row.len() / 3;
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
}

/// torchvision's `RandomResizedCrop` box choice (scale 0.5-1, ratio 3/4-4/3,
/// ten tries, then the whole image), with a seeded generator.
fn random_crop_box(
    width: usize,
    height: usize,
    rng: &mut SplitMix64,
) -> (usize, usize, usize, usize) {
    let area = (width * height) as f64;
    for _ in 0..10 {
        let target = area * rng.range_f64(0.5, 1.0);
        let ratio = rng
            .range_f64((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln())
            .exp();
        let w = (target * ratio).sqrt().round() as usize;
        let h = (target / ratio).sqrt().round() as usize;
        if w > 0 && h > 0 && w <= width && h <= height {
            let x = rng.below(width - w + 1);
            let y = rng.below(height - h + 1);
            return (x, y, w, h);
        }
    }
    (0, 0, width, height)
}

fn prepare_one(
    example: &CaptionExample,
    processor: &ImageProcessor,
    augment: Augment,
    rng: &mut SplitMix64,
) -> Result<(Vec<f32>, (usize, usize)), medcap_model::preprocess::ImageError> {
    let mut image = RgbImage::open(&example.image)?;
    if augment.random_crop {
        let (x, y, w, h) = random_crop_box(image.width, image.height, rng);
        image = crop(&image, x, y, w, h);
    }
    if augment.horizontal_flip && rng.chance(0.5) {
        flip(&mut image);
    }
    let (values, h, w) = processor.process(&image);
    Ok((values, (h, w)))
}

/// Decodes and preprocesses one micro-batch, images in parallel. The
/// augmentation of each example depends only on (seed, epoch, example index).
pub fn load_batch(
    examples: &[CaptionExample],
    indices: &[usize],
    processor: &ImageProcessor,
    augment: Augment,
    seed: u64,
    epoch: usize,
) -> Batch {
    let results: Vec<_> = indices
        .par_iter()
        .map(|&i| {
            let mut rng = SplitMix64::for_item(seed ^ 0x5eed_a116, (epoch as u64) << 32 | i as u64);
            (i, prepare_one(&examples[i], processor, augment, &mut rng))
        })
        .collect();
    let mut batch = Batch {
        pixels: Vec::new(),
        len: 0,
        size: {
            let (h, w) = processor.output_size();
            (h as usize, w as usize)
        },
        captions: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, result) in results {
        match result {
            Ok((values, size)) => {
                batch.size = size;
                batch.pixels.extend(values);
                batch.len += 1;
                batch.captions.push(examples[i].caption.clone());
            }
            // The error names the file; the batch keeps it as the reason.
            Err(reason) => batch.skipped.push(reason.to_string()),
        }
    }
    batch
}

/// Micro-batches of one epoch from position `start` on, prepared by a
/// background thread (with `workers` decoding threads) one batch ahead.
pub struct Prefetcher {
    receiver: mpsc::Receiver<Batch>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts preparing the batches of `order` (chunked by `micro_batch`)
    /// from batch number `start`; of those, with `(rank, processes)`, only
    /// every `processes`-th from the `rank`-th on (a rank's share of each
    /// step when `processes` divides the accumulation).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        examples: std::sync::Arc<Vec<CaptionExample>>,
        order: Vec<usize>,
        micro_batch: usize,
        start: usize,
        processor: ImageProcessor,
        augment: Augment,
        seed: u64,
        epoch: usize,
        workers: usize,
        (rank, processes): (usize, usize),
    ) -> Self {
        let (sender, receiver) = mpsc::sync_channel(2);
        let handle = std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers.max(1))
                .build();
            let run = || {
                let share = order
                    .chunks(micro_batch)
                    .skip(start)
                    .skip(rank)
                    .step_by(processes.max(1));
                for chunk in share {
                    let batch = load_batch(&examples, chunk, &processor, augment, seed, epoch);
                    if sender.send(batch).is_err() {
                        return; // the trainer stopped early
                    }
                }
            };
            match pool {
                Ok(pool) => pool.install(run),
                Err(_) => run(),
            }
        });
        Self {
            receiver,
            handle: Some(handle),
        }
    }

    /// The next batch, or `None` at the end of the epoch.
    pub fn next_batch(&mut self) -> Option<Batch> {
        self.receiver.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Unblock the producer, then wait for it.
        let (_, dead) = mpsc::sync_channel(0);
        let receiver = std::mem::replace(&mut self.receiver, dead);
        drop(receiver);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_that_differ_by_epoch() {
        let a = epoch_order(50, 1, 0);
        let b = epoch_order(50, 1, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(a, b);
        assert_eq!(a, epoch_order(50, 1, 0));
    }

    #[test]
    fn crop_boxes_stay_inside_and_cover_half_or_more() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            let (x, y, w, h) = random_crop_box(61, 37, &mut rng);
            assert!(x + w <= 61 && y + h <= 37);
            assert!(w * h * 10 >= 61 * 37 * 4, "{w}x{h}");
        }
    }

    #[test]
    fn flip_mirrors_rows() {
        let mut image = RgbImage {
            width: 3,
            height: 1,
            pixels: vec![1, 1, 1, 2, 2, 2, 3, 3, 3],
        };
        flip(&mut image);
        assert_eq!(image.pixels, vec![3, 3, 3, 2, 2, 2, 1, 1, 1]);
    }
}
