//! A general-domain synthetic captioning set: simple scenes of coloured
//! shapes at named positions, with captions that say what is where. It
//! teaches the small base model general captioning, so that it can play the
//! role of the general-purpose BLIP that the study fine-tunes on chest figures.

use std::path::{Path, PathBuf};

use medcap_dataset::paths::PathWriter;
use medcap_dataset::rng::SplitMix64;
use medcap_dataset::split_csv::{SplitRow, write_split_csv};

use crate::error::{StudyError, io};

const COLOURS: [(&str, [u8; 3]); 7] = [
    ("red", [220, 40, 40]),
    ("green", [40, 170, 60]),
    ("blue", [40, 80, 220]),
    ("yellow", [235, 215, 40]),
    ("purple", [140, 60, 180]),
    ("orange", [245, 140, 30]),
    ("black", [20, 20, 20]),
];
const SHAPES: [&str; 3] = ["circle", "square", "triangle"];
/// Grid cells (column, row) and how a caption names them.
const PLACES: [((usize, usize), &str); 5] = [
    ((0, 1), "on the left"),
    ((2, 1), "on the right"),
    ((1, 0), "at the top"),
    ((1, 2), "at the bottom"),
    ((1, 1), "in the center"),
];

/// One generated scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// The PNG file.
    pub image: PathBuf,
    /// What it shows.
    pub caption: String,
}

fn inside(shape: &str, x: f64, y: f64) -> bool {
    // Coordinates relative to the shape's box, in [-1, 1].
    match shape {
        "circle" => x * x + y * y <= 1.0,
        "square" => x.abs() <= 0.85 && y.abs() <= 0.85,
        _ => (-0.9..=0.9).contains(&y) && x.abs() <= (y + 0.9) / 1.8 * 0.95,
    }
}

/// Draws scene `index` of seed `seed` at `size` pixels; returns the pixels
/// and the caption.
pub fn draw_scene(size: usize, seed: u64, index: u64) -> (image::RgbImage, String) {
    let mut rng = SplitMix64::for_item(seed, index);
    let background = [
        200 + rng.below(56) as u8,
        200 + rng.below(56) as u8,
        200 + rng.below(56) as u8,
    ];
    let mut img = image::RgbImage::from_pixel(size as u32, size as u32, image::Rgb(background));
    let count = 1 + rng.below(2);
    let mut places: Vec<usize> = (0..PLACES.len()).collect();
    rng.shuffle(&mut places);
    let mut parts = Vec::new();
    for &place in places.iter().take(count) {
        let (colour_name, colour) = *rng.pick(&COLOURS);
        let shape = *rng.pick(&SHAPES);
        let ((cx, cy), where_) = PLACES[place];
        let cell = size as f64 / 3.0;
        let centre = ((cx as f64 + 0.5) * cell, (cy as f64 + 0.5) * cell);
        let radius = cell * rng.range_f64(0.3, 0.45);
        for y in 0..size {
            for x in 0..size {
                let dx = (x as f64 + 0.5 - centre.0) / radius;
                let dy = (y as f64 + 0.5 - centre.1) / radius;
                if inside(shape, dx, dy) {
                    img.put_pixel(x as u32, y as u32, image::Rgb(colour));
                }
            }
        }
        parts.push(format!("a {colour_name} {shape} {where_}"));
    }
    (img, parts.join(" and "))
}

/// Writes `count` scenes under `dir/images/` and the CSVs `train.csv` and
/// `val.csv` (the last `val` scenes), in the columns `medcap prepare` writes.
pub fn write_scenes(
    dir: &Path,
    count: usize,
    val: usize,
    size: usize,
    seed: u64,
) -> Result<(PathBuf, PathBuf), StudyError> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).map_err(io(&images))?;
    // Image paths relative to the CSVs (medcap-dataset's path rule), so the
    // directory can be moved and read from any working directory.
    let writer = PathWriter::new(dir)
        .and_then(|w| w.within(dir))
        .map_err(io(dir))?;
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for i in 0..count {
        let (img, caption) = draw_scene(size, seed, i as u64);
        let path = images.join(format!("scene{i:05}.png"));
        img.save(&path).map_err(|e| StudyError::Stage {
            stage: "scenes",
            reason: format!("{}: {e}", path.display()),
        })?;
        let id = format!("scene{i}");
        let row = SplitRow {
            id: id.clone(),
            pdf_hash: id,
            image_path: writer.store(&path).map_err(io(&path))?,
            raw_caption: caption.clone(),
            caption,
        };
        if i + val >= count {
            validation.push(row);
        } else {
            train.push(row);
        }
    }
    let train_csv = dir.join("train.csv");
    let val_csv = dir.join("val.csv");
    write_split_csv(&train_csv, &train)?;
    write_split_csv(&val_csv, &validation)?;
    Ok((train_csv, val_csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_captioned() {
        let (a, ca) = draw_scene(48, 1, 7);
        let (b, cb) = draw_scene(48, 1, 7);
        assert_eq!(a, b);
        assert_eq!(ca, cb);
        assert!(ca.starts_with("a "), "{ca}");
        assert!(SHAPES.iter().any(|s| ca.contains(s)));
        let (_, other) = draw_scene(48, 1, 8);
        let (_, third) = draw_scene(48, 1, 9);
        assert!(other != ca || third != ca);
    }
}
