//! Captions for synthetic figures, in MedICaT's style and with its noise:
//! figure labels, panel letters, "(arrow)", stray punctuation, doubled
//! spaces. The clean content names every finding that was drawn.

use super::findings::{Amount, Device, FigureKind, Finding, side_word, zone_word};
use medcap_rng::SplitMix64;

fn finding_phrase(f: &Finding, rng: &mut SplitMix64) -> String {
    match f {
        Finding::Nodule {
            side,
            zone,
            size_cm,
        } => {
            format!(
                "a {size_cm:.1} cm nodule in the {} {} zone",
                side_word(*side),
                zone_word(*zone)
            )
        }
        Finding::Mass {
            side,
            zone,
            size_cm,
        } => match rng.below(2) {
            0 => format!(
                "a {size_cm:.1} cm mass in the {} {} zone",
                side_word(*side),
                zone_word(*zone)
            ),
            _ => format!(
                "a {} {} zone mass measuring {size_cm:.1} cm",
                side_word(*side),
                zone_word(*zone)
            ),
        },
        Finding::PleuralEffusion { side, amount } => {
            let amount = match amount {
                Amount::Small => "small",
                Amount::Moderate => "moderate",
                Amount::Large => "large",
            };
            match rng.below(2) {
                0 => format!("a {amount} {} pleural effusion", side_word(*side)),
                _ => format!("a {amount} {}-sided pleural effusion", side_word(*side)),
            }
        }
        Finding::Pneumothorax { side } => match rng.below(2) {
            0 => format!("a {} pneumothorax", side_word(*side)),
            _ => format!("a {} apical pneumothorax", side_word(*side)),
        },
        Finding::Cardiomegaly { ratio } => match rng.below(2) {
            0 => format!("cardiomegaly with a cardiothoracic ratio of {ratio:.2}"),
            _ => "an enlarged cardiac silhouette (cardiomegaly)".to_owned(),
        },
        Finding::Consolidation { side, zone } => {
            format!(
                "consolidation in the {} {} zone",
                side_word(*side),
                zone_word(*zone)
            )
        }
        Finding::Line { device, side, tip } => match device {
            Device::EndotrachealTube => format!("an endotracheal tube with its tip {tip}"),
            Device::CentralLine => format!(
                "a {} subclavian central venous catheter with its tip {tip}",
                side_word(*side)
            ),
            Device::ChestTube => format!("a {} chest tube with its tip {tip}", side_word(*side)),
            Device::NasogastricTube => format!("a nasogastric tube with its tip {tip}"),
        },
    }
}

fn join_phrases(phrases: &[String]) -> String {
    match phrases {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The clean caption of a chest radiograph. Some say "chest" in lower case,
/// and a few not at all ("thorax"), as real captions do.
fn chest_caption(findings: &[Finding], rng: &mut SplitMix64) -> String {
    let modality = *rng.pick(&[
        "Chest radiograph",
        "Chest X-ray",
        "Frontal chest radiograph",
        "PA chest radiograph",
        "Portable AP chest X-ray",
        "Posteroanterior chest film",
        "Frontal radiograph of the chest",
        "Frontal radiograph of the thorax",
    ]);
    let mut phrases: Vec<String> = findings.iter().map(|f| finding_phrase(f, rng)).collect();
    // Point at the first finding, as captions do.
    if !phrases.is_empty() && rng.chance(0.3) {
        phrases[0].push_str(" (arrow)");
    }
    // A normal figure's caption takes the same three forms as the others
    // ("No acute cardiopulmonary abnormality on chest radiograph."). With one
    // form only, "Chest radiograph with no acute ...", it began with one of
    // eight modality phrases while a caption of findings began with "a" most
    // of the time, and a greedy decoder, which picks the first word before
    // it has weighed the rest, never began a normal caption.
    let list = if phrases.is_empty() {
        "no acute cardiopulmonary abnormality".to_owned()
    } else {
        join_phrases(&phrases)
    };
    let body = match rng.below(3) {
        0 => format!("{modality} showing {list}."),
        1 => format!("{modality} demonstrates {list}."),
        _ => {
            // Lower-case the first word unless it is an acronym ("PA", "AP").
            let mut lower = modality.to_owned();
            if lower.as_bytes().get(1).is_some_and(u8::is_ascii_lowercase)
                && let Some(first) = lower.get_mut(0..1)
            {
                first.make_ascii_lowercase();
            }
            let mut s = format!("{list} on {lower}.");
            if let Some(first) = s.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            s
        }
    };
    if rng.chance(0.3) {
        let age = 18 + rng.below(70);
        let sex = *rng.pick(&["man", "woman"]);
        let complaint = *rng.pick(&[
            "dyspnoea",
            "cough and fever",
            "chest pain",
            "trauma",
            "weight loss",
        ]);
        let article = if age == 18 || (80..90).contains(&age) {
            "An"
        } else {
            "A"
        };
        format!("{article} {age}-year-old {sex} with {complaint}. {body}")
    } else {
        body
    }
}

fn brain_caption(rng: &mut SplitMix64) -> String {
    let caption = format!(
        "{} MRI of the brain showing a {:.1} cm lesion in the {} {} lobe.",
        rng.pick(&[
            "Axial T2-weighted",
            "Axial FLAIR",
            "Contrast-enhanced T1-weighted"
        ]),
        rng.range_f64(0.5, 4.0),
        rng.pick(&["right", "left"]),
        rng.pick(&["frontal", "parietal", "temporal", "occipital"]),
    );
    // Some also mention the chest: the study's rule sets them aside ("Brain"
    // wins), a plain keyword rule keeps them.
    if rng.chance(0.1) {
        format!("Brain metastases: {caption} Chest CT showed the primary tumour.")
    } else {
        caption
    }
}

fn knee_caption(rng: &mut SplitMix64) -> String {
    format!(
        "Lateral radiograph of the {} knee showing {}.",
        rng.pick(&["right", "left"]),
        rng.pick(&[
            "a joint effusion",
            "a tibial plateau fracture",
            "osteoarthritis",
            "no fracture"
        ])
    )
}

fn histology_caption(rng: &mut SplitMix64) -> String {
    format!(
        "Histopathology (H&E, ×{}) showing {}.",
        rng.pick(&[100, 200, 400]),
        rng.pick(&[
            "adenocarcinoma",
            "granulomatous inflammation",
            "squamous cell carcinoma"
        ])
    )
}

/// A clean caption for the figure, then MedICaT-style noise around it.
pub(super) fn caption(
    kind: FigureKind,
    findings: &[Finding],
    fig_number: usize,
    rng: &mut SplitMix64,
) -> String {
    let clean = match kind {
        FigureKind::ChestRadiograph => chest_caption(findings, rng),
        FigureKind::BrainMri => brain_caption(rng),
        FigureKind::KneeRadiograph => knee_caption(rng),
        FigureKind::Histology => histology_caption(rng),
    };
    add_noise(&clean, fig_number, rng)
}

fn add_noise(clean: &str, n: usize, rng: &mut SplitMix64) -> String {
    let mut text = clean.to_owned();
    if rng.chance(0.2) {
        text = format!("(A) {text}");
    }
    if rng.chance(0.1) {
        text = text.replacen(", ", " ,, ", 1);
    }
    if rng.chance(0.15)
        && let Some(stripped) = text.strip_suffix('.')
    {
        text = format!("{stripped} .");
    }
    if rng.chance(0.15) {
        text = text.replacen(' ', "  ", 1);
    }
    let label = match rng.below(8) {
        0 => format!("Fig. {n}. "),
        1 => format!("Fig {n}: "),
        2 => format!("FIGURE {n} | "),
        3 => format!("Figure {n}A: "),
        4 => String::new(),
        _ => format!("Figure {n}. "),
    };
    format!("{label}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_captions_take_the_forms_of_the_others() {
        // Every form a caption of findings takes, a normal caption takes too,
        // including the one that begins with what the figure shows.
        let mut rng = SplitMix64::new(3);
        let captions: Vec<String> = (0..200).map(|_| chest_caption(&[], &mut rng)).collect();
        for caption in &captions {
            assert!(
                caption
                    .to_lowercase()
                    .contains("no acute cardiopulmonary abnormality"),
                "{caption}"
            );
        }
        let body = |c: &String| c.rsplit(". ").next().unwrap_or(c).to_owned();
        let starting_with_the_finding = captions
            .iter()
            .filter(|c| body(c).starts_with("No acute cardiopulmonary abnormality on "))
            .count();
        let showing = captions
            .iter()
            .filter(|c| c.contains(" showing no acute"))
            .count();
        let demonstrates = captions
            .iter()
            .filter(|c| c.contains(" demonstrates no acute"))
            .count();
        for (form, n) in [
            ("No acute ... on MODALITY", starting_with_the_finding),
            ("MODALITY showing no acute ...", showing),
            ("MODALITY demonstrates no acute ...", demonstrates),
        ] {
            assert!((40..=100).contains(&n), "{form}: {n} of 200");
        }
    }
}
