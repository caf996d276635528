//! What a synthetic figure shows: its kind and, for chest radiographs, the
//! findings drawn into it. This is the ground truth written to the side file.

use serde::{Deserialize, Serialize};

use medcap_rng::SplitMix64;

/// The patient's side (drawn mirrored, as radiographs are viewed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The patient's right, on the left of the image.
    Right,
    /// The patient's left, on the right of the image.
    Left,
}

/// A vertical lung zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// Upper zone.
    Upper,
    /// Middle zone.
    Middle,
    /// Lower zone.
    Lower,
}

/// A tube or line and where its tip lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    /// Endotracheal tube, tip above the carina.
    EndotrachealTube,
    /// Central venous catheter, tip in the superior vena cava.
    CentralLine,
    /// Chest drain, tip at the apex of the given side.
    ChestTube,
    /// Nasogastric tube, tip in the stomach.
    NasogastricTube,
}

/// How large an effusion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// Blunts the costophrenic angle.
    Small,
    /// Up to the mid zone.
    Moderate,
    /// Beyond the mid zone.
    Large,
}

/// A finding drawn into a synthetic chest radiograph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// A round opacity under 3 cm.
    Nodule {
        /// Side.
        side: Side,
        /// Zone.
        zone: Zone,
        /// Diameter in cm.
        size_cm: f64,
    },
    /// A round opacity of 3 cm or more.
    Mass {
        /// Side.
        side: Side,
        /// Zone.
        zone: Zone,
        /// Diameter in cm.
        size_cm: f64,
    },
    /// Fluid at the lung base.
    PleuralEffusion {
        /// Side.
        side: Side,
        /// Size.
        amount: Amount,
    },
    /// Air outside the lung at the apex.
    Pneumothorax {
        /// Side.
        side: Side,
    },
    /// An enlarged heart.
    Cardiomegaly {
        /// Cardiothoracic ratio.
        ratio: f64,
    },
    /// Patchy airspace opacity.
    Consolidation {
        /// Side.
        side: Side,
        /// Zone.
        zone: Zone,
    },
    /// A line or tube.
    Line {
        /// Which device.
        device: Device,
        /// The side it enters or lies on.
        side: Side,
        /// Where its tip is, in words.
        tip: String,
    },
}

/// The kind of a synthetic figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// A frontal chest radiograph (the figures the filter should keep).
    ChestRadiograph,
    /// An axial brain MRI slice.
    BrainMri,
    /// A knee radiograph.
    KneeRadiograph,
    /// A stained histology section.
    Histology,
}

fn side(rng: &mut SplitMix64) -> Side {
    if rng.chance(0.5) {
        Side::Right
    } else {
        Side::Left
    }
}

fn zone(rng: &mut SplitMix64) -> Zone {
    *rng.pick(&[Zone::Upper, Zone::Middle, Zone::Lower])
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Samples 0 to 3 findings; about one radiograph in six is normal.
pub(super) fn sample_findings(rng: &mut SplitMix64) -> Vec<Finding> {
    let count = *rng.pick(&[0, 1, 1, 1, 2, 2, 3]);
    let mut findings: Vec<Finding> = Vec::new();
    let mut attempts = 0;
    while findings.len() < count && attempts < 20 {
        attempts += 1;
        let f = match rng.below(7) {
            0 => Finding::Nodule {
                side: side(rng),
                zone: zone(rng),
                size_cm: round1(rng.range_f64(0.6, 2.9)),
            },
            1 => Finding::Mass {
                side: side(rng),
                zone: zone(rng),
                size_cm: round1(rng.range_f64(3.0, 7.5)),
            },
            2 => Finding::PleuralEffusion {
                side: side(rng),
                amount: *rng.pick(&[Amount::Small, Amount::Moderate, Amount::Large]),
            },
            3 => Finding::Pneumothorax { side: side(rng) },
            4 => Finding::Cardiomegaly {
                ratio: (rng.range_f64(0.56, 0.7) * 100.0).round() / 100.0,
            },
            5 => Finding::Consolidation {
                side: side(rng),
                zone: zone(rng),
            },
            _ => {
                let device = *rng.pick(&[
                    Device::EndotrachealTube,
                    Device::CentralLine,
                    Device::ChestTube,
                    Device::NasogastricTube,
                ]);
                let side = side(rng);
                let tip = match device {
                    Device::EndotrachealTube => {
                        format!("{:.1} cm above the carina", rng.range_f64(2.0, 6.0))
                    }
                    Device::CentralLine => "in the superior vena cava".to_owned(),
                    Device::ChestTube => format!("at the {} apex", side_word(side)),
                    Device::NasogastricTube => "in the stomach".to_owned(),
                };
                Finding::Line { device, side, tip }
            }
        };
        // One finding of each kind keeps captions and pictures readable.
        if !findings
            .iter()
            .any(|g| std::mem::discriminant(g) == std::mem::discriminant(&f))
        {
            findings.push(f);
        }
    }
    findings
}

pub(super) fn side_word(side: Side) -> &'static str {
    match side {
        Side::Right => "right",
        Side::Left => "left",
    }
}

pub(super) fn zone_word(zone: Zone) -> &'static str {
    match zone {
        Zone::Upper => "upper",
        Zone::Middle => "middle",
        Zone::Lower => "lower",
    }
}
