//! Padded batches of token sequences, shared by the text encoders
//! (BERTScore's, BLEURT, AlignScore): sequences grouped longest first, so
//! that batches pad little, each group as right-padded `[batch, longest]`
//! tensors with the attention mask; outputs return to input order.

use tch::{Device, Tensor};

use crate::error::ModelError;

/// The batches of `lengths.len()` sequences, `batch_size` at a time,
/// longest first: indices into the input.
pub(crate) fn longest_first(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// `rows` right-padded with `fill` into `[rows, longest]` int64 on `device`.
pub(crate) fn padded(rows: &[&[u32]], fill: i64, device: Device) -> Tensor {
    let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut flat = vec![fill; rows.len() * longest];
    for (row, ids) in rows.iter().enumerate() {
        for (col, &id) in ids.iter().enumerate() {
            flat[row * longest + col] = i64::from(id);
        }
    }
    Tensor::from_slice(&flat)
        .view([rows.len() as i64, longest as i64])
        .to_device(device)
}

/// The attention mask of `rows` padded as [`padded`] pads them: 1 for a
/// token, 0 for padding.
pub(crate) fn mask(rows: &[&[u32]], device: Device) -> Tensor {
    let ones: Vec<Vec<u32>> = rows.iter().map(|r| vec![1; r.len()]).collect();
    let ones: Vec<&[u32]> = ones.iter().map(Vec::as_slice).collect();
    padded(&ones, 0, device)
}

/// A batch's one value per row (`values`: `[rows]`, any float kind, any
/// device) written to `out` at the batch's input indices.
///
/// # Errors
/// [`ModelError::Torch`] naming `what` when the values cannot be read.
pub(crate) fn scatter(
    out: &mut [f64],
    chunk: &[usize],
    values: &Tensor,
    what: &str,
) -> Result<(), ModelError> {
    let values = values.to_kind(tch::Kind::Double).to_device(Device::Cpu);
    let values: Vec<f64> = Vec::try_from(&values).map_err(|source| ModelError::Torch {
        context: format!("reading {what}"),
        source,
    })?;
    for (&i, v) in chunk.iter().zip(values) {
        out[i] = v;
    }
    Ok(())
}
