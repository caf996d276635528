//! A general-domain synthetic captioning set, with captions that say what is
//! where: every other scene is coloured shapes on a pale ground, the others
//! grey-scale pictures of spots, patches and lines on a noisy, shaded
//! ground. It teaches the small base model general captioning, so that it
//! can play the role of the general-purpose BLIP that the study fine-tunes
//! on chest figures. BLIP's own pretraining (129M web images) gives it a
//! vision encoder that finds small objects and says where they are, in colour
//! and in grey; the grey scenes give the small model that skill, in general
//! words only (no anatomy, no findings: those are what fine-tuning teaches).

use std::path::{Path, PathBuf};

use medcap_dataset::paths::PathWriter;
use medcap_dataset::split_csv::{SplitRow, write_split_csv};
use medcap_rng::SplitMix64;

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

/// Where a grey scene's object lies: grid cell (column, row) and its name.
const GREY_PLACES: [((usize, usize), &str); 9] = [
    ((0, 0), "at the top left"),
    ((1, 0), "at the top"),
    ((2, 0), "at the top right"),
    ((0, 1), "on the left"),
    ((1, 1), "in the center"),
    ((2, 1), "on the right"),
    ((0, 2), "at the bottom left"),
    ((1, 2), "at the bottom"),
    ((2, 2), "at the bottom right"),
];

/// Whether a pixel at offset (dx, dy) from an object's centre belongs to it.
type Paint = Box<dyn Fn(f64, f64) -> bool>;

/// A grey-scale scene: a shaded, noisy ground and one to three objects
/// (small bright spots, large bright or dark patches, thin bright lines),
/// each in its own cell of a 3 x 3 grid.
fn draw_grey_scene(size: usize, rng: &mut SplitMix64) -> (image::RgbImage, String) {
    let n = size as f64;
    let base = rng.range_f64(40.0, 110.0);
    let (gx, gy) = (rng.range_f64(-40.0, 40.0), rng.range_f64(-40.0, 40.0));
    let mut grey: Vec<f64> = (0..size * size)
        .map(|i| {
            let (x, y) = ((i % size) as f64 / n - 0.5, (i / size) as f64 / n - 0.5);
            base + gx * x + gy * y + rng.range_f64(-12.0, 12.0)
        })
        .collect();
    let count = 1 + rng.below(3);
    let mut places: Vec<usize> = (0..GREY_PLACES.len()).collect();
    rng.shuffle(&mut places);
    let cell = n / 3.0;
    let mut parts = Vec::new();
    for &place in places.iter().take(count) {
        let ((cx, cy), where_) = GREY_PLACES[place];
        let centre = (
            (cx as f64 + rng.range_f64(0.3, 0.7)) * cell,
            (cy as f64 + rng.range_f64(0.3, 0.7)) * cell,
        );
        let (what, shade, paint): (&str, f64, Paint) = match rng.below(4) {
            0 => {
                let r = cell * rng.range_f64(0.08, 0.16);
                (
                    "a small bright spot",
                    120.0,
                    Box::new(move |dx: f64, dy: f64| dx * dx + dy * dy <= r * r),
                )
            }
            1 => {
                let (rx, ry) = (
                    cell * rng.range_f64(0.3, 0.48),
                    cell * rng.range_f64(0.3, 0.48),
                );
                (
                    "a large bright patch",
                    90.0,
                    Box::new(move |dx: f64, dy: f64| (dx / rx).powi(2) + (dy / ry).powi(2) <= 1.0),
                )
            }
            2 => {
                let (rx, ry) = (
                    cell * rng.range_f64(0.3, 0.48),
                    cell * rng.range_f64(0.3, 0.48),
                );
                (
                    "a large dark patch",
                    -60.0,
                    Box::new(move |dx: f64, dy: f64| (dx / rx).powi(2) + (dy / ry).powi(2) <= 1.0),
                )
            }
            _ => {
                // A thin line through the centre, at an angle.
                let angle = rng.range_f64(0.0, std::f64::consts::PI);
                let (ux, uy) = (angle.cos(), angle.sin());
                let half = cell * 0.45;
                let width = (n / 96.0).max(1.0);
                (
                    "a thin bright line",
                    110.0,
                    Box::new(move |dx: f64, dy: f64| {
                        (dx * ux + dy * uy).abs() <= half && (dx * uy - dy * ux).abs() <= width
                    }),
                )
            }
        };
        for y in 0..size {
            for x in 0..size {
                if paint(x as f64 + 0.5 - centre.0, y as f64 + 0.5 - centre.1) {
                    grey[y * size + x] += shade;
                }
            }
        }
        parts.push(format!("{what} {where_}"));
    }
    let mut img = image::RgbImage::new(size as u32, size as u32);
    for (pixel, v) in img.pixels_mut().zip(&grey) {
        let v = v.clamp(0.0, 255.0).round() as u8;
        *pixel = image::Rgb([v, v, v]);
    }
    (img, parts.join(" and "))
}

/// Draws scene `index` of seed `seed` at `size` pixels; returns the pixels
/// and the caption. Odd scenes are grey-scale, even ones coloured shapes.
pub fn draw_scene(size: usize, seed: u64, index: u64) -> (image::RgbImage, String) {
    let mut rng = SplitMix64::for_item(seed, index);
    if index % 2 == 1 {
        return draw_grey_scene(size, &mut rng);
    }
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
        medcap_io::write_atomic_via(&path, |temporary| {
            img.save_with_format(temporary, image::ImageFormat::Png)
                .map_err(|e| StudyError::Stage {
                    stage: "scenes",
                    reason: format!("{}: {e}", path.display()),
                })
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
        // Even scenes are the coloured shapes.
        let (a, ca) = draw_scene(48, 1, 6);
        let (b, cb) = draw_scene(48, 1, 6);
        assert_eq!(a, b);
        assert_eq!(ca, cb);
        assert!(ca.starts_with("a "), "{ca}");
        assert!(SHAPES.iter().any(|s| ca.contains(s)));
        let (_, other) = draw_scene(48, 1, 8);
        let (_, third) = draw_scene(48, 1, 10);
        assert!(other != ca || third != ca);
    }

    #[test]
    fn grey_scenes_are_grey_and_say_where_each_object_is() {
        for index in [1u64, 3, 5, 7, 9, 11] {
            let (img, caption) = draw_scene(96, 2, index);
            assert!(
                img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
                "{caption}"
            );
            let objects = caption.split(" and ").count();
            assert!((1..=3).contains(&objects), "{caption}");
            for part in caption.split(" and ") {
                assert!(part.starts_with("a "), "{part}");
                assert!(GREY_PLACES.iter().any(|(_, w)| part.ends_with(w)), "{part}");
            }
        }
        // A bright spot brightens its cell: the top-left cell of a scene
        // with a spot there is brighter at the spot than the cell's mean.
        let (img, caption) = (0..200u64)
            .map(|i| draw_scene(96, 3, 2 * i + 1))
            .find(|(_, c)| c == "a small bright spot at the top left")
            .unwrap_or_else(|| panic!("no scene with only a spot at the top left"));
        let cell: Vec<u8> = (0..32)
            .flat_map(|y| (0..32).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y)[0])
            .collect();
        let max = *cell.iter().max().unwrap_or(&0) as f64;
        let mean = cell.iter().map(|&v| v as f64).sum::<f64>() / cell.len() as f64;
        assert!(max > mean + 60.0, "{caption}: max {max}, mean {mean}");
    }
}
