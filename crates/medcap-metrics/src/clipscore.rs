//! Reference-free image–caption scores from an image–text encoder's
//! embeddings: CLIPScore and RefCLIPScore (Hessel et al., 2021, "CLIPScore:
//! A Reference-free Evaluation Metric for Image Captioning"), PAC-S (Sarto
//! et al., 2023: the same forms with w = 2) and torchmetrics' `CLIPScore`
//! (100 · cos). The encoder lives in medcap-model; this module owns the
//! arithmetic, on embeddings given as `f32` slices (any scale: they are
//! normalised here).
//!
//! ```
//! use medcap_metrics::clipscore::{ClipScoreForm, RefForm, clip_score, ref_clip_score};
//!
//! let image = [1.0_f32, 0.0];
//! let caption = [0.6_f32, 0.8];
//! let s = clip_score(&image, &caption, ClipScoreForm::Hessel);
//! assert!((s - 2.5 * 0.6).abs() < 1e-6);
//! // An all-negative cosine scores 0 in Hessel's and PAC-S's forms.
//! assert_eq!(clip_score(&[1.0, 0.0], &[-1.0, 0.0], ClipScoreForm::Pacs), 0.0);
//! // RefCLIPScore: harmonic mean with the best caption-reference cosine.
//! let r = ref_clip_score(s, &caption, &[&[0.6, 0.8], &[0.0, 1.0]], RefForm::Code).unwrap();
//! assert!((r - 2.0 * s * 1.0 / (s + 1.0)).abs() < 1e-6);
//! assert_eq!(ref_clip_score(s, &caption, &[], RefForm::Code), None);
//! ```

use serde::{Deserialize, Serialize};

/// The scale and clamping of the image–caption cosine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipScoreForm {
    /// Hessel et al.: 2.5 · max(cos, 0), per caption.
    Hessel,
    /// PAC-S (Sarto et al.): 2.0 · max(cos, 0), per caption.
    Pacs,
    /// torchmetrics' `CLIPScore`: 100 · cos per caption, unclamped;
    /// torchmetrics reports max(mean, 0) of these.
    Torchmetrics,
}

impl ClipScoreForm {
    /// The weight w.
    pub const fn weight(self) -> f64 {
        match self {
            ClipScoreForm::Hessel => 2.5,
            ClipScoreForm::Pacs => 2.0,
            ClipScoreForm::Torchmetrics => 100.0,
        }
    }

    /// The name used on the command line and in signatures.
    pub const fn name(self) -> &'static str {
        match self {
            ClipScoreForm::Hessel => "hessel",
            ClipScoreForm::Pacs => "pacs",
            ClipScoreForm::Torchmetrics => "torchmetrics",
        }
    }

    /// Whether RefCLIPScore is defined in this form (torchmetrics has none).
    pub const fn has_reference_form(self) -> bool {
        !matches!(self, ClipScoreForm::Torchmetrics)
    }
}

/// How RefCLIPScore treats the caption–reference cosine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefForm {
    /// As Hessel's `clipscore.py` computes it: the best cosine as it is
    /// (a negative one makes the harmonic mean negative or undefined).
    Code,
    /// As the paper writes it: max(best cosine, 0); 0 when both parts are 0.
    Paper,
}

impl RefForm {
    /// The name used on the command line and in signatures.
    pub const fn name(self) -> &'static str {
        match self {
            RefForm::Code => "code",
            RefForm::Paper => "paper",
        }
    }
}

/// One caption's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipScoreValue {
    /// CLIPScore (or PAC-S, or torchmetrics' per-caption value).
    pub clip_s: f64,
    /// RefCLIPScore (RefPAC-S), when the caption has references and the form defines it.
    pub ref_clip_s: Option<f64>,
}

/// The cosine of two vectors, in float64 (0 when either is all zeros, where
/// the reference code divides by zero).
///
/// # Panics
/// Never; vectors of different lengths are compared over the shorter.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    dot / (aa.sqrt() * bb.sqrt())
}

/// CLIPScore of a caption for an image: `w · max(cos, 0)` (Hessel, PAC-S)
/// or `100 · cos` (torchmetrics), from their embeddings.
pub fn clip_score(image: &[f32], caption: &[f32], form: ClipScoreForm) -> f64 {
    let c = cosine(image, caption);
    match form {
        ClipScoreForm::Torchmetrics => form.weight() * c,
        _ => form.weight() * c.max(0.0),
    }
}

/// RefCLIPScore: the harmonic mean of `clip_s` (from [`clip_score`]) and
/// the caption's best cosine with its references' embeddings; `None`
/// without references.
pub fn ref_clip_score(
    clip_s: f64,
    caption: &[f32],
    references: &[&[f32]],
    form: RefForm,
) -> Option<f64> {
    let best = references
        .iter()
        .map(|r| cosine(caption, r))
        .reduce(f64::max)?;
    Some(match form {
        // numpy's arithmetic, 0/0 and x/0 included.
        RefForm::Code => 2.0 * clip_s * best / (clip_s + best),
        RefForm::Paper => {
            let best = best.max(0.0);
            if clip_s + best == 0.0 {
                0.0
            } else {
                2.0 * clip_s * best / (clip_s + best)
            }
        }
    })
}

/// Which model produced an encoder's embeddings, for signatures and notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderLabel {
    /// The layout: `clip` (Hugging Face CLIPModel), `open_clip`, `blip-itc`.
    pub layout: String,
    /// The model's name (its directory's name).
    pub name: String,
    /// Whether the model is known to be trained on PubMed Central figures
    /// (BiomedCLIP, PubMedCLIP, PMC-CLIP): its scores on ROCO, PMC-OA and
    /// MedICaT test sets, drawn from the same source, are optimistic.
    pub trained_on_pmc: bool,
}

impl EncoderLabel {
    /// A label, guessing `trained_on_pmc` from the name and the names a
    /// configuration gives (`BiomedCLIP`, `PubMedCLIP`, `PMC-CLIP`,
    /// `PubMedBERT`, `BiomedBERT` in any case).
    pub fn new(layout: &str, name: &str, other_names: &[&str]) -> Self {
        let pmc = std::iter::once(name)
            .chain(other_names.iter().copied())
            .any(|n| {
                let n = n.to_lowercase();
                [
                    "biomedclip",
                    "pubmedclip",
                    "pmc-clip",
                    "pmc_clip",
                    "pubmedbert",
                    "biomedbert",
                ]
                .iter()
                .any(|k| n.contains(k))
            });
        Self {
            layout: layout.to_owned(),
            name: name.to_owned(),
            trained_on_pmc: pmc,
        }
    }
}

/// The settings of a CLIPScore run, as they appear in its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipScoreSettings {
    /// The score's form.
    pub form: ClipScoreForm,
    /// RefCLIPScore's treatment of the reference cosine.
    pub ref_form: RefForm,
    /// Text put before every caption and reference ("A photo depicts " in
    /// Hessel's code), empty for none.
    pub prefix: String,
}

impl ClipScoreSettings {
    /// Hessel's defaults for `form`: his prefix for `hessel`, none for the
    /// others; the code's RefCLIPScore.
    pub fn defaults(form: ClipScoreForm) -> Self {
        Self {
            form,
            ref_form: RefForm::Code,
            prefix: if form == ClipScoreForm::Hessel {
                HESSEL_PREFIX.into()
            } else {
                String::new()
            },
        }
    }

    /// `clipscore:<form>:<encoder layout>:<encoder name>:prefix=<...>:ref=<code|paper>`.
    pub fn signature(&self, encoder: &EncoderLabel) -> String {
        format!(
            "clipscore:{}:{}:{}:prefix={}:ref={}",
            self.form.name(),
            encoder.layout,
            encoder.name,
            if self.prefix.is_empty() {
                "none".to_owned()
            } else {
                format!("{:?}", self.prefix)
            },
            self.ref_form.name()
        )
    }
}

/// What scores captions against their images: medcap-model's `ClipScorer`
/// (this crate has no encoder), taken by callers that must not link
/// libtorch themselves.
pub trait ImageCaptionScorer {
    /// Scores `candidates[i]` against the image at `images[i]` and, when
    /// not empty, `references[i]`: one value or one error (an image that
    /// cannot be read, naming it) per caption.
    ///
    /// # Errors
    /// The encoder's failure, as text.
    fn score_captions(
        &self,
        images: &[&std::path::Path],
        candidates: &[&str],
        references: &[Vec<&str>],
    ) -> Result<Vec<Result<ClipScoreValue, String>>, String>;
    /// The embeddings of the images at `images` (one error, naming the
    /// file, per image that cannot be read) and of `texts` (with the
    /// settings' prefix), for scores with their own rules (ImageCLEF's
    /// Similarity).
    ///
    /// # Errors
    /// The encoder's failure, as text.
    #[allow(clippy::type_complexity, reason = "two parallel lists of vectors")]
    fn embeddings(
        &self,
        images: &[&std::path::Path],
        texts: &[&str],
    ) -> Result<(Vec<Result<Vec<f32>, String>>, Vec<Vec<f32>>), String>;
    /// The settings scored with.
    fn settings(&self) -> &ClipScoreSettings;
    /// The encoder.
    fn encoder(&self) -> &EncoderLabel;
}

/// The text Hessel's `clipscore.py` puts before every caption and reference.
pub const HESSEL_PREFIX: &str = "A photo depicts ";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forms_weights_and_clamping() {
        let (img, cap) = ([1.0f32, 0.0], [-0.6f32, 0.8]);
        assert_eq!(clip_score(&img, &cap, ClipScoreForm::Hessel), 0.0);
        assert_eq!(clip_score(&img, &cap, ClipScoreForm::Pacs), 0.0);
        assert!((clip_score(&img, &cap, ClipScoreForm::Torchmetrics) + 60.0).abs() < 1e-5);
        // Scale does not matter.
        let a = clip_score(&[3.0, 4.0], &[6.0, 8.0], ClipScoreForm::Hessel);
        assert!((a - 2.5).abs() < 1e-12);
        assert_eq!(
            clip_score(&[0.0, 0.0], &[1.0, 0.0], ClipScoreForm::Hessel),
            0.0
        );
    }

    #[test]
    fn ref_forms_differ_on_a_negative_reference_cosine() {
        let cap = [1.0f32, 0.0];
        let refs: [&[f32]; 2] = [&[-1.0, 0.2], &[-0.5, -1.0]];
        let best = refs
            .iter()
            .map(|r| cosine(&cap, r))
            .fold(f64::MIN, f64::max);
        assert!(best < 0.0);
        let code = ref_clip_score(0.5, &cap, &refs, RefForm::Code).unwrap();
        assert!((code - 2.0 * 0.5 * best / (0.5 + best)).abs() < 1e-12);
        assert_eq!(ref_clip_score(0.5, &cap, &refs, RefForm::Paper), Some(0.0));
        assert_eq!(ref_clip_score(0.0, &cap, &refs, RefForm::Paper), Some(0.0));
        // The code's 0/0.
        assert!(
            ref_clip_score(0.0, &cap, &[&[0.0, 1.0]], RefForm::Code)
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn labels_and_signatures() {
        let l = EncoderLabel::new(
            "open_clip",
            "BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
            &[],
        );
        assert!(l.trained_on_pmc);
        let l = EncoderLabel::new(
            "clip",
            "clip-vit-base-patch32",
            &["openai/clip-vit-base-patch32"],
        );
        assert!(!l.trained_on_pmc);
        let s = ClipScoreSettings::defaults(ClipScoreForm::Hessel).signature(&l);
        assert_eq!(
            s,
            "clipscore:hessel:clip:clip-vit-base-patch32:prefix=\"A photo depicts \":ref=code"
        );
        assert!(
            ClipScoreSettings::defaults(ClipScoreForm::Pacs)
                .prefix
                .is_empty()
        );
    }
}
