//! Image resampling that reproduces Pillow's `Image.resize` for 8-bit RGB
//! with the BICUBIC and BILINEAR filters bit for bit (Pillow 13.0): separable
//! passes in Pillow's order, a kernel widened by the scale factor when
//! downsampling (antialiasing), and Pillow's 22-bit fixed-point arithmetic
//! with rounding and clipping to 8 bits after each pass.
//!
//! transformers' `BlipImageProcessor` resizes through Pillow, so matching it
//! here is what makes pixel values equal; torch's bicubic (a = -0.75, no
//! antialiasing) and the `image` crate's filters differ by more than one step.

/// A resampling kernel with Pillow's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Keys cubic with a = -0.5 (Pillow `BICUBIC`, resample = 3).
    Bicubic,
    /// Triangle (Pillow `BILINEAR`, resample = 2).
    Bilinear,
}

impl Filter {
    /// Pillow's resample code (`preprocessor_config.json`'s `resample`).
    pub fn from_pillow_code(code: i64) -> Option<Self> {
        match code {
            3 => Some(Self::Bicubic),
            2 => Some(Self::Bilinear),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Self::Bicubic => 2.0,
            Self::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Self::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output position: the first input index and the fixed-point weights.
struct Coefficients {
    starts: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let inverse = 1.0 / filter_scale;
    let mut starts = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for out in 0..out_size {
        let center = (out as f64 + 0.5) * scale;
        // `as i64` truncates toward zero, as the C cast does.
        let first = ((center - support + 0.5) as i64).max(0) as usize;
        let last = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
        let raw: Vec<f64> = (first..last.max(first))
            .map(|x| filter.weight((x as f64 - center + 0.5) * inverse))
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                // Round half away from zero, then truncate, as Pillow does.
                (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
            })
            .collect();
        starts.push(first);
        weights.push(fixed);
    }
    Coefficients { starts, weights }
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes packed 8-bit RGB (`width * height * 3` bytes, row-major) to
/// `new_width` x `new_height`, exactly as Pillow's `Image.resize`.
pub fn resize_rgb(
    pixels: &[u8],
    width: usize,
    height: usize,
    new_width: usize,
    new_height: usize,
    filter: Filter,
) -> Vec<u8> {
    assert_eq!(pixels.len(), width * height * 3, "packed RGB buffer size");
    if width == 0 || height == 0 || new_width == 0 || new_height == 0 {
        return vec![0; new_width * new_height * 3];
    }
    let need_horizontal = new_width != width;
    let need_vertical = new_height != height;
    // Pillow 13 runs the vertical pass first when the height shrinks by
    // more than twice what the width shrinks (earlier releases always went
    // horizontal first); the order changes rounding, so it is mirrored.
    let shrink_rows = height as i64 - new_height as i64;
    let shrink_cols = width as i64 - new_width as i64;
    let horizontal_first = !(shrink_rows > 0 && shrink_rows > 2 * shrink_cols);
    let mut current = Plane {
        pixels: pixels.to_vec(),
        width,
    };
    let vertical = coefficients(height, new_height, filter);
    if horizontal_first {
        if need_horizontal {
            // Only the input rows the vertical pass reads need the horizontal one.
            let (first, last) = if need_vertical {
                let last = vertical.starts[new_height - 1] + vertical.weights[new_height - 1].len();
                (vertical.starts[0], last)
            } else {
                (0, height)
            };
            current = horizontal_pass(&current, first, last, new_width, filter);
            if need_vertical {
                current = vertical_pass(&current, &vertical, first);
            }
        } else if need_vertical {
            current = vertical_pass(&current, &vertical, 0);
        }
    } else {
        if need_vertical {
            current = vertical_pass(&current, &vertical, 0);
        }
        if need_horizontal {
            current = horizontal_pass(&current, 0, new_height, new_width, filter);
        }
    }
    current.pixels
}

/// Packed RGB rows of one width.
struct Plane {
    pixels: Vec<u8>,
    width: usize,
}

/// Resamples rows `first..last` of `input` to `new_width` columns.
fn horizontal_pass(
    input: &Plane,
    first: usize,
    last: usize,
    new_width: usize,
    filter: Filter,
) -> Plane {
    let c = coefficients(input.width, new_width, filter);
    let row_in = input.width * 3;
    let mut out = vec![0u8; new_width * (last - first) * 3];
    for (y, dst) in out.chunks_exact_mut(new_width * 3).enumerate() {
        let src = &input.pixels[(y + first) * row_in..(y + first + 1) * row_in];
        for x in 0..new_width {
            let start = c.starts[x];
            for ch in 0..3 {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (i, &w) in c.weights[x].iter().enumerate() {
                    acc += i64::from(src[(start + i) * 3 + ch]) * i64::from(w);
                }
                dst[x * 3 + ch] = clip8(acc);
            }
        }
    }
    Plane {
        pixels: out,
        width: new_width,
    }
}

/// Resamples columns with the vertical coefficients `c`; `input` holds the
/// source rows from `first_row` on.
fn vertical_pass(input: &Plane, c: &Coefficients, first_row: usize) -> Plane {
    let row_len = input.width * 3;
    let mut out = vec![0u8; row_len * c.starts.len()];
    for (y, dst) in out.chunks_exact_mut(row_len).enumerate() {
        let start = c.starts[y] - first_row;
        for (x, value) in dst.iter_mut().enumerate() {
            let mut acc: i64 = 1 << (PRECISION_BITS - 1);
            for (i, &w) in c.weights[y].iter().enumerate() {
                acc += i64::from(input.pixels[(start + i) * row_len + x]) * i64::from(w);
            }
            *value = clip8(acc);
        }
    }
    Plane {
        pixels: out,
        width: input.width,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_image_stays_flat_at_any_size() {
        let grey = vec![200u8; 4 * 3 * 3];
        for filter in [Filter::Bicubic, Filter::Bilinear] {
            let out = resize_rgb(&grey, 4, 3, 7, 5, filter);
            assert_eq!(out.len(), 7 * 5 * 3);
            assert!(out.iter().all(|&v| v == 200));
        }
    }

    #[test]
    fn identity_size_is_a_copy() {
        let pixels: Vec<u8> = (0..5 * 4 * 3).map(|v| v as u8).collect();
        assert_eq!(resize_rgb(&pixels, 5, 4, 5, 4, Filter::Bicubic), pixels);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (input, output) in [(61, 32), (20, 384), (300, 57), (7, 7)] {
            let c = coefficients(input, output, Filter::Bicubic);
            for w in &c.weights {
                let sum: i64 = w.iter().map(|&v| i64::from(v)).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= w.len() as i64,
                    "{sum}"
                );
            }
        }
    }

    #[test]
    fn bicubic_kernel_is_keys_with_a_minus_half() {
        assert_eq!(Filter::Bicubic.weight(0.0), 1.0);
        assert_eq!(Filter::Bicubic.weight(1.0), 0.0);
        assert_eq!(Filter::Bicubic.weight(2.0), 0.0);
        assert!((Filter::Bicubic.weight(1.5) - (-0.0625)).abs() < 1e-12);
    }
}
