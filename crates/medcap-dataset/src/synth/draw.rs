//! Pictures for synthetic figures: a schematic frontal chest radiograph
//! with its findings drawn in, and three kinds of non-chest figure.

use image::{DynamicImage, Rgb, RgbImage};

use super::canvas::Canvas;
use super::findings::{Amount, Device, FigureKind, Finding, Side, Zone};
use medcap_rng::SplitMix64;

/// Geometry of one radiograph, in pixels.
struct Thorax {
    w: f32,
    h: f32,
    lung_rx: f32,
    lung_ry: f32,
    lung_cy: f32,
}

impl Thorax {
    /// Centre x of a lung. The patient's right is on the image's left.
    fn lung_cx(&self, side: Side) -> f32 {
        match side {
            Side::Right => 0.5 * self.w - 0.18 * self.w,
            Side::Left => 0.5 * self.w + 0.18 * self.w,
        }
    }

    fn zone_cy(&self, zone: Zone) -> f32 {
        let offset = match zone {
            Zone::Upper => -0.55,
            Zone::Middle => 0.0,
            Zone::Lower => 0.5,
        };
        self.lung_cy + offset * self.lung_ry
    }

    /// Pixels per centimetre: a lung is about 24 cm tall.
    fn px_per_cm(&self) -> f32 {
        2.0 * self.lung_ry / 24.0
    }

    /// Where the trachea divides.
    fn carina(&self) -> (f32, f32) {
        (0.5 * self.w, self.lung_cy - 0.35 * self.lung_ry)
    }
}

pub(super) fn render(kind: FigureKind, findings: &[Finding], rng: &mut SplitMix64) -> DynamicImage {
    let w = 224 + 16 * rng.below(6);
    let h = 224 + 16 * rng.below(6);
    match kind {
        FigureKind::ChestRadiograph => {
            DynamicImage::ImageLuma8(chest(w, h, findings, rng).to_gray())
        }
        FigureKind::BrainMri => DynamicImage::ImageLuma8(brain(w, h, rng).to_gray()),
        FigureKind::KneeRadiograph => DynamicImage::ImageLuma8(knee(w, h, rng).to_gray()),
        FigureKind::Histology => DynamicImage::ImageRgb8(histology(w, h, rng)),
    }
}

fn chest(w: usize, h: usize, findings: &[Finding], rng: &mut SplitMix64) -> Canvas {
    let (wf, hf) = (w as f32, h as f32);
    let t = Thorax {
        w: wf,
        h: hf,
        lung_rx: 0.14 * wf,
        lung_ry: 0.3 * hf,
        lung_cy: 0.47 * hf,
    };
    let mut c = Canvas::new(w, h, 0.04);
    // Soft tissue of the trunk and the shoulders.
    c.ellipse(0.5 * wf, 0.6 * hf, 0.46 * wf, 0.55 * hf, 0.45, 1.0, 6.0);
    // Lungs: dark air.
    for side in [Side::Right, Side::Left] {
        c.ellipse(
            t.lung_cx(side),
            t.lung_cy,
            t.lung_rx,
            t.lung_ry,
            0.14,
            1.0,
            5.0,
        );
    }
    // Lung markings: vessels branching out from each hilum, faint and
    // thinning towards the periphery. A normal lung is not uniformly dark;
    // a pneumothorax shows as a region without them.
    for side in [Side::Right, Side::Left] {
        let dir = if side == Side::Right { -1.0 } else { 1.0 };
        let hilum = (0.5 * wf + dir * 0.07 * wf, t.lung_cy - 0.05 * t.lung_ry);
        for k in 0..7 {
            let angle = -1.2 + k as f32 * 0.4 + (rng.unit() as f32 - 0.5) * 0.2;
            let (dx, dy) = (dir * angle.cos(), angle.sin());
            let reach = t.lung_rx * (1.2 + 0.4 * rng.unit() as f32);
            let bend = (rng.unit() as f32 - 0.5) * 0.2 * reach;
            c.polyline(
                &[
                    hilum,
                    (
                        hilum.0 + 0.5 * reach * dx,
                        hilum.1 + 0.5 * reach * dy + bend,
                    ),
                    (hilum.0 + reach * dx, hilum.1 + 0.9 * reach * dy + bend),
                ],
                1.6,
                0.08,
            );
        }
    }
    // Diaphragm domes below the lungs.
    for side in [Side::Right, Side::Left] {
        c.ellipse(
            t.lung_cx(side),
            t.lung_cy + t.lung_ry * 1.02,
            t.lung_rx * 1.1,
            0.07 * hf,
            0.55,
            1.0,
            4.0,
        );
    }
    // Spine and mediastinum.
    c.ellipse(0.5 * wf, 0.5 * hf, 0.045 * wf, 0.48 * hf, 0.72, 1.0, 3.0);
    // The trachea and the main bronchi: an air column about 1.6 cm wide down
    // the mediastinum to the carina, where the bronchi part. Without it an
    // endotracheal tube lay on bright mediastinum and vanished at the model's
    // 96 pixels; on a radiograph it is a bright tube inside a dark column.
    let carina = t.carina();
    let bronchus = |dir: f32| (carina.0 + dir * 0.09 * wf, carina.1 + 0.16 * t.lung_ry);
    c.polylines(
        &[
            &[(0.5 * wf, 0.0), carina],
            &[bronchus(-1.0), carina, bronchus(1.0)],
        ],
        1.6 * t.px_per_cm(),
        -0.35,
    );
    // Heart, larger with cardiomegaly (its ratio is heart width to thorax width).
    let ratio = findings
        .iter()
        .find_map(|f| match f {
            Finding::Cardiomegaly { ratio } => Some(*ratio as f32),
            _ => None,
        })
        .unwrap_or(rng.range_f64(0.40, 0.47) as f32);
    let heart_rx = ratio * (2.0 * 0.32 * wf) / 2.0;
    c.ellipse(
        0.53 * wf,
        t.lung_cy + 0.45 * t.lung_ry,
        heart_rx,
        0.13 * hf,
        0.68,
        1.0,
        4.0,
    );
    // Ribs: bright arcs across each hemithorax.
    for side in [Side::Right, Side::Left] {
        let cx = t.lung_cx(side);
        let dir = if side == Side::Right { -1.0 } else { 1.0 };
        for k in 0..9 {
            let y0 = t.lung_cy - 0.95 * t.lung_ry + k as f32 * 0.2 * t.lung_ry;
            let pts: Vec<(f32, f32)> = (0..=8)
                .map(|i| {
                    let u = i as f32 / 8.0;
                    let x = 0.5 * wf + dir * (0.03 * wf + u * (cx - 0.5 * wf).abs() * 1.9);
                    // Posterior ribs run out from the spine and curve down laterally.
                    (x, y0 - 0.04 * t.lung_ry + 0.3 * t.lung_ry * u * u)
                })
                .collect();
            c.polyline(&pts, 2.5, 0.12);
        }
    }
    // Clavicles.
    for dir in [-1.0f32, 1.0] {
        c.polyline(
            &[
                (0.5 * wf + dir * 0.05 * wf, 0.15 * hf),
                (0.5 * wf + dir * 0.33 * wf, 0.12 * hf),
            ],
            4.0,
            0.25,
        );
    }
    for f in findings {
        draw_finding(&mut c, &t, f, rng);
    }
    c.noise(rng, 0.03);
    c
}

fn draw_finding(c: &mut Canvas, t: &Thorax, finding: &Finding, rng: &mut SplitMix64) {
    match finding {
        Finding::Nodule {
            side,
            zone,
            size_cm,
        }
        | Finding::Mass {
            side,
            zone,
            size_cm,
        } => {
            let r = *size_cm as f32 * t.px_per_cm() / 2.0;
            let jitter = (rng.unit() as f32 - 0.5) * t.lung_rx * 0.6;
            c.ellipse(
                t.lung_cx(*side) + jitter,
                t.zone_cy(*zone),
                r,
                r * 0.9,
                0.72,
                1.0,
                (r * 0.25).max(1.0),
            );
        }
        Finding::PleuralEffusion { side, amount } => {
            let level = match amount {
                Amount::Small => 0.75,
                Amount::Moderate => 0.35,
                Amount::Large => -0.1,
            };
            let top = t.lung_cy + level * t.lung_ry;
            let bottom = t.lung_cy + 1.05 * t.lung_ry;
            // The meniscus: a wide ellipse whose upper rim rises laterally.
            let cx = t.lung_cx(*side);
            c.ellipse(cx, bottom, t.lung_rx * 1.05, bottom - top, 0.62, 0.95, 4.0);
        }
        Finding::Pneumothorax { side } => {
            let dir = if *side == Side::Right { -1.0 } else { 1.0 };
            let cx = t.lung_cx(*side) + dir * 0.45 * t.lung_rx;
            let cy = t.lung_cy - 0.45 * t.lung_ry;
            // Air without lung markings, and the visceral pleural line.
            c.ellipse(cx, cy, 0.45 * t.lung_rx, 0.5 * t.lung_ry, 0.0, 1.0, 1.5);
            let pts: Vec<(f32, f32)> = (0..=12)
                .map(|i| {
                    let a = std::f32::consts::PI * (i as f32 / 12.0 - 0.5);
                    (
                        cx - dir * 0.45 * t.lung_rx * a.cos(),
                        cy + 0.5 * t.lung_ry * a.sin(),
                    )
                })
                .collect();
            c.polyline(&pts, 2.0, 0.4);
        }
        Finding::Cardiomegaly { .. } => {} // drawn with the heart
        Finding::Consolidation { side, zone } => {
            // Airspace filled with fluid: a confluent opacity over most of the
            // zone, ill-defined at its margin, with air bronchograms (dark
            // branching airways against it). A faint speckle alone, as drawn
            // before, averaged away at the model's 96-pixel input.
            let (cx, cy) = (t.lung_cx(*side), t.zone_cy(*zone));
            let (rx, ry) = (0.85 * t.lung_rx, 0.26 * t.lung_ry);
            c.ellipse(cx, cy, rx, ry, 0.5, 0.85, 0.3 * rx);
            c.blotches(rng, cx, cy, 1.1 * rx, 1.2 * ry, 24, 0.55, 0.15 * t.lung_rx);
            let dir = if *side == Side::Right { -1.0 } else { 1.0 };
            let hilum = cx - dir * 0.6 * rx;
            for k in 0..3 {
                let spread = (k as f32 - 1.0) * 0.5 * ry;
                let bend = (rng.unit() as f32 - 0.5) * 0.3 * ry;
                c.polyline(
                    &[
                        (hilum, cy + 0.3 * spread),
                        (cx, cy + 0.7 * spread + bend),
                        (cx + dir * 0.6 * rx, cy + spread + bend),
                    ],
                    1.5,
                    -0.22,
                );
            }
        }
        Finding::Line { device, side, .. } => {
            let (w, h) = (t.w, t.h);
            let dir = if *side == Side::Right { -1.0 } else { 1.0 };
            let carina = t.carina();
            let pts: Vec<(f32, f32)> = match device {
                Device::EndotrachealTube => {
                    vec![(0.5 * w, 0.0), (0.5 * w, carina.1 - 0.1 * t.lung_ry)]
                }
                Device::CentralLine => vec![
                    (0.5 * w + dir * 0.3 * w, 0.1 * h),
                    (0.5 * w + dir * 0.1 * w, 0.17 * h),
                    (0.5 * w - 0.05 * w, t.lung_cy - 0.2 * t.lung_ry),
                ],
                Device::ChestTube => vec![
                    (
                        t.lung_cx(*side) + dir * 1.3 * t.lung_rx,
                        t.lung_cy + 0.7 * t.lung_ry,
                    ),
                    (
                        t.lung_cx(*side) + dir * 0.6 * t.lung_rx,
                        t.lung_cy + 0.3 * t.lung_ry,
                    ),
                    (t.lung_cx(*side), t.lung_cy - 0.8 * t.lung_ry),
                ],
                Device::NasogastricTube => vec![
                    (0.49 * w, 0.0),
                    (0.51 * w, t.lung_cy + 0.8 * t.lung_ry),
                    (0.62 * w, t.lung_cy + 1.2 * t.lung_ry),
                ],
            };
            // Drawn at their real calibre (an adult endotracheal tube and a
            // chest drain are about 0.8 cm across, a nasogastric tube 0.5 cm,
            // a central venous catheter 0.3 cm), not as hairlines: at two
            // source pixels they were under a pixel wide at the model's input.
            let calibre_cm = match device {
                Device::EndotrachealTube | Device::ChestTube => 0.8,
                Device::NasogastricTube => 0.5,
                Device::CentralLine => 0.3,
            };
            c.polyline(&pts, (calibre_cm * t.px_per_cm()).max(2.0), 0.6);
        }
    }
}

fn brain(w: usize, h: usize, rng: &mut SplitMix64) -> Canvas {
    let (wf, hf) = (w as f32, h as f32);
    let mut c = Canvas::new(w, h, 0.02);
    c.ellipse(0.5 * wf, 0.5 * hf, 0.38 * wf, 0.45 * hf, 0.85, 1.0, 2.0); // skull and scalp
    c.ellipse(0.5 * wf, 0.5 * hf, 0.35 * wf, 0.42 * hf, 0.45, 1.0, 2.0); // brain
    for dir in [-1.0f32, 1.0] {
        c.ellipse(
            0.5 * wf + dir * 0.05 * wf,
            0.48 * hf,
            0.03 * wf,
            0.1 * hf,
            0.9,
            1.0,
            2.0,
        ); // ventricles
    }
    if rng.chance(0.6) {
        let x = rng.range_f64(0.3, 0.7) as f32 * wf;
        c.ellipse(
            x,
            rng.range_f64(0.25, 0.7) as f32 * hf,
            0.06 * wf,
            0.05 * hf,
            0.95,
            1.0,
            3.0,
        );
    }
    c.noise(rng, 0.04);
    c
}

fn knee(w: usize, h: usize, rng: &mut SplitMix64) -> Canvas {
    let (wf, hf) = (w as f32, h as f32);
    let mut c = Canvas::new(w, h, 0.05);
    c.ellipse(0.5 * wf, 0.5 * hf, 0.3 * wf, 0.6 * hf, 0.35, 1.0, 6.0); // soft tissue
    c.ellipse(0.5 * wf, 0.25 * hf, 0.12 * wf, 0.3 * hf, 0.8, 1.0, 2.0); // femur
    c.ellipse(0.5 * wf, 0.78 * hf, 0.11 * wf, 0.28 * hf, 0.8, 1.0, 2.0); // tibia
    c.ellipse(0.63 * wf, 0.42 * hf, 0.05 * wf, 0.07 * hf, 0.75, 1.0, 2.0); // patella
    c.noise(rng, 0.03);
    c
}

fn histology(w: usize, h: usize, rng: &mut SplitMix64) -> RgbImage {
    // Eosin-pink stroma with haematoxylin-purple nuclei.
    let mut img = RgbImage::from_pixel(w as u32, h as u32, Rgb([236, 190, 214]));
    let nuclei = 60 + rng.below(80);
    for _ in 0..nuclei {
        let cx = rng.below(w) as i64;
        let cy = rng.below(h) as i64;
        let r = 3 + rng.below(5) as i64;
        for y in (cy - r).max(0)..(cy + r).min(h as i64) {
            for x in (cx - r).max(0)..(cx + r).min(w as i64) {
                if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                    img.put_pixel(x as u32, y as u32, Rgb([96, 60, 150]));
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{FilterType, resize};

    /// The embedded study's image side: what the model sees of a figure.
    const MODEL_SIDE: u32 = 96;

    /// The largest change a finding makes to the figure once it is resized to
    /// the model's input, in grey levels of 0 to 255. Devices draw without
    /// randomness, so both pictures carry the same noise and only the device
    /// differs.
    fn visible_change(finding: Finding, side: usize) -> u8 {
        let picture = |findings: &[Finding]| {
            let gray = chest(side, side, findings, &mut SplitMix64::new(11)).to_gray();
            resize(&gray, MODEL_SIDE, MODEL_SIDE, FilterType::CatmullRom)
        };
        let (with, without) = (picture(&[finding]), picture(&[]));
        with.pixels()
            .zip(without.pixels())
            .map(|(a, b)| a.0[0].abs_diff(b.0[0]))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn every_device_stands_out_at_the_models_input_size() {
        // Drawn 2 source pixels wide, an endotracheal tube over the bright
        // mediastinum changed the 96-pixel input by 41 grey levels at most,
        // a nasogastric tube by 78; at their calibre, the tube inside the
        // tracheal air column, every device changes it by 106 or more.
        for device in [
            Device::EndotrachealTube,
            Device::CentralLine,
            Device::ChestTube,
            Device::NasogastricTube,
        ] {
            for side in [224, 304] {
                let line = Finding::Line {
                    device,
                    side: Side::Right,
                    tip: String::new(),
                };
                let change = visible_change(line, side);
                assert!(
                    change >= 90,
                    "{device:?} at {side} px changes the 96-pixel input by {change} grey levels"
                );
            }
        }
    }
}
