//! The training objectives: BLIP's captioning cross-entropy (label
//! smoothing, one shift, padding and prompt ignored) and the study's margin
//! contrastive loss on L2-normalised image and text embeddings.

use medcap_model::blip::l2_normalize;
use tch::{Kind, Reduction, Tensor};

use crate::targets::IGNORE;

/// Summed label-smoothed cross-entropy of next-token predictions: `logits`
/// `[batch, len, vocab]` at position t predict `labels[t + 1]`. Divide by
/// the number of target tokens (of the whole accumulated batch) for the
/// mean; with no target token the sum is 0 (never NaN).
///
/// ```
/// use medcap_train::loss::caption_loss_sum;
/// use tch::{Kind, Tensor};
///
/// let logits = Tensor::zeros([1, 3, 5], (Kind::Float, tch::Device::Cpu));
/// let labels = Tensor::from_slice(&[-100i64, 2, -100]).view([1, 3]);
/// // Uniform logits: every target costs ln 5, smoothing or not.
/// let loss = caption_loss_sum(&logits, &labels, 0.1).double_value(&[]);
/// assert!((loss - 5f64.ln()).abs() < 1e-6);
/// ```
pub fn caption_loss_sum(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Tensor {
    let size = logits.size();
    let (batch, len, vocab) = (size[0], size[1], size[2]);
    if len < 2 {
        return logits.sum(Kind::Float) * 0.0;
    }
    let predictions = logits
        .narrow(1, 0, len - 1)
        .reshape([batch * (len - 1), vocab]);
    let targets = labels
        .narrow(1, 1, len - 1)
        .reshape([batch * (len - 1)])
        .to_device(logits.device());
    if targets.ne(IGNORE).sum(Kind::Int64).int64_value(&[]) == 0 {
        // Keeps the graph connected so backward still runs, with a zero gradient.
        return logits.sum(Kind::Float) * 0.0;
    }
    predictions
        .to_kind(Kind::Float)
        .cross_entropy_loss::<Tensor>(&targets, None, Reduction::Sum, IGNORE, label_smoothing)
}

/// The margin contrastive loss of Kiros et al. as the study uses it, on
/// image and text embeddings `[batch, dim]` (row i of each is a matching
/// pair): with cosine similarities S and margin alpha,
/// `sum_i sum_{j != i} [alpha - S_ii + S_ij]_+ + [alpha - S_jj + S_ij]_+`,
/// i.e. every other caption as a negative for each image and every other
/// image as a negative for each caption. `hardest_negative` keeps only the
/// largest hinge per row and per column (VSE++).
///
/// ```
/// use medcap_train::loss::margin_contrastive_loss;
/// use tch::Tensor;
///
/// // Orthogonal matching pairs: S = identity, every hinge is [0.2 - 1 + 0]_+ = 0.
/// let e = Tensor::eye(3, (tch::Kind::Float, tch::Device::Cpu));
/// assert_eq!(margin_contrastive_loss(&e, &e, 0.2, false).double_value(&[]), 0.0);
/// ```
pub fn margin_contrastive_loss(
    image: &Tensor,
    text: &Tensor,
    margin: f64,
    hardest_negative: bool,
) -> Tensor {
    let image = l2_normalize(image);
    let text = l2_normalize(text);
    let scores = image.matmul(&text.tr());
    similarity_hinge(&scores, margin, hardest_negative)
}

/// The hinge sum on a similarity matrix (rows: images, columns: captions).
pub fn similarity_hinge(scores: &Tensor, margin: f64, hardest_negative: bool) -> Tensor {
    let n = scores.size()[0];
    let diagonal = scores.diag(0).view([n, 1]);
    let off_diagonal = Tensor::eye(n, (Kind::Bool, scores.device())).logical_not();
    let zero = Tensor::zeros([], (scores.kind(), scores.device()));
    // Captions as negatives for image i (row i), images as negatives for caption j (column j).
    let cost_captions = (scores - &diagonal + margin)
        .clamp_min(0.0)
        .where_self(&off_diagonal, &zero);
    let cost_images = (scores - diagonal.tr() + margin)
        .clamp_min(0.0)
        .where_self(&off_diagonal, &zero);
    if hardest_negative {
        cost_captions
            .amax([1i64].as_slice(), false)
            .sum(Kind::Float)
            + cost_images.amax([0i64].as_slice(), false).sum(Kind::Float)
    } else {
        cost_captions.sum(Kind::Float) + cost_images.sum(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hinge_on_a_three_by_three_matrix_by_hand() {
        let s = Tensor::from_slice(&[0.9f32, 0.3, 0.8, 0.1, 0.5, 0.2, 0.4, 0.6, 0.7]).view([3, 3]);
        // Rows (image anchors), alpha 0.2:
        // i=0: d=0.9: [0.2-0.9+0.3]+=0, [0.2-0.9+0.8]+=0.1
        // i=1: d=0.5: [0.2-0.5+0.1]+=0, [0.2-0.5+0.2]+=0
        // i=2: d=0.7: [0.2-0.7+0.4]+=0, [0.2-0.7+0.6]+=0.1
        // Columns (caption anchors):
        // j=0: d=0.9: [0.2-0.9+0.1]+=0, [0.2-0.9+0.4]+=0
        // j=1: d=0.5: [0.2-0.5+0.3]+=0, [0.2-0.5+0.6]+=0.3
        // j=2: d=0.7: [0.2-0.7+0.8]+=0.3, [0.2-0.7+0.2]+=0
        let total = similarity_hinge(&s, 0.2, false).double_value(&[]);
        assert!((total - 0.8).abs() < 1e-6, "{total}");
        // Hardest only: rows 0.1 + 0 + 0.1, columns 0 + 0.3 + 0.3.
        let hardest = similarity_hinge(&s, 0.2, true).double_value(&[]);
        assert!((hardest - 0.8).abs() < 1e-6, "{hardest}");
        let s2 = Tensor::from_slice(&[0.5f32, 0.6, 0.7, 0.5]).view([2, 2]);
        // rows: [0.2-0.5+0.6]=0.3, [0.2-0.5+0.7]=0.4; cols: [0.2-0.5+0.7]=0.4, [0.2-0.5+0.6]=0.3
        assert!((similarity_hinge(&s2, 0.2, false).double_value(&[]) - 1.4).abs() < 1e-6);
        // Two violated negatives in one row: the sum counts both, VSE++ the worst.
        let s3 =
            Tensor::from_slice(&[0.5f32, 0.6, 0.65, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).view([3, 3]);
        assert!((similarity_hinge(&s3, 0.2, false).double_value(&[]) - 0.65).abs() < 1e-6);
        assert!((similarity_hinge(&s3, 0.2, true).double_value(&[]) - 0.35).abs() < 1e-6);
    }

    #[test]
    fn smoothed_cross_entropy_matches_the_formula() {
        tch::manual_seed(1);
        let logits = Tensor::randn([2, 4, 7], (Kind::Float, tch::Device::Cpu));
        let labels = Tensor::from_slice(&[-100i64, 3, 6, -100, -100, 0, -100, -100]).view([2, 4]);
        let eps = 0.1;
        let ours = caption_loss_sum(&logits, &labels, eps).double_value(&[]);
        // By hand: (1 - eps) * nll + eps * mean over classes of -log p, per target.
        let logp = logits.log_softmax(-1, Kind::Float);
        let mut expected = 0.0;
        for (b, t, y) in [(0i64, 0i64, 3i64), (0, 1, 6), (1, 0, 0)] {
            let row = logp.get(b).get(t);
            let nll = -row.double_value(&[y]);
            let uniform = -row.mean(Kind::Float).double_value(&[]);
            expected += (1.0 - eps) * nll + eps * uniform;
        }
        assert!((ours - expected).abs() < 1e-5, "{ours} vs {expected}");
        // torch's own mean reduction agrees with sum / count.
        let mean = logits
            .narrow(1, 0, 3)
            .reshape([6, 7])
            .cross_entropy_loss::<Tensor>(
                &labels.narrow(1, 1, 3).reshape([6]),
                None,
                Reduction::Mean,
                -100,
                eps,
            )
            .double_value(&[]);
        assert!((ours / 3.0 - mean).abs() < 1e-6);
    }

    #[test]
    fn no_target_token_gives_zero_not_nan() {
        let logits =
            Tensor::randn([1, 3, 5], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let labels = Tensor::from_slice(&[-100i64, -100, -100]).view([1, 3]);
        let loss = caption_loss_sum(&logits, &labels, 0.1);
        assert_eq!(loss.double_value(&[]), 0.0);
        loss.backward();
        assert_eq!(logits.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}
