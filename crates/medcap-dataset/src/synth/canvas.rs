//! A grey-level drawing surface with the few primitives the synthetic
//! figures need: soft ellipses, thick polylines, blotches and noise.

use image::{GrayImage, Luma};

use medcap_rng::SplitMix64;

/// Pixels in `[0, 1]`, row-major.
pub(super) struct Canvas {
    pub width: usize,
    pub height: usize,
    px: Vec<f32>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: f32) -> Self {
        Self {
            width,
            height,
            px: vec![background; width * height],
        }
    }

    fn bounds(&self, cx: f32, cy: f32, rx: f32, ry: f32) -> (usize, usize, usize, usize) {
        let clamp = |v: f32, max: usize| (v.max(0.0) as usize).min(max);
        (
            clamp(cx - rx - 1.0, self.width),
            clamp(cx + rx + 2.0, self.width),
            clamp(cy - ry - 1.0, self.height),
            clamp(cy + ry + 2.0, self.height),
        )
    }

    // Positional coordinates read best for a drawing primitive.
    #[allow(clippy::too_many_arguments)]
    /// Blends `value` into an ellipse with a soft edge `soft` pixels wide;
    /// `alpha` is the opacity at the centre.
    pub fn ellipse(
        &mut self,
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        value: f32,
        alpha: f32,
        soft: f32,
    ) {
        let (x0, x1, y0, y1) = self.bounds(cx, cy, rx + soft, ry + soft);
        let rx = rx.max(0.5);
        let ry = ry.max(0.5);
        for y in y0..y1 {
            for x in x0..x1 {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (y as f32 + 0.5 - cy) / ry;
                let d = (dx * dx + dy * dy).sqrt();
                // Distance outside the rim, in pixels, approximately.
                let outside = (d - 1.0) * rx.min(ry);
                let a = alpha * (1.0 - (outside / soft.max(0.5)).clamp(0.0, 1.0));
                if a > 0.0 {
                    let p = &mut self.px[y * self.width + x];
                    *p += (value - *p) * a;
                }
            }
        }
    }

    /// Adds `delta` once to every pixel within `thickness / 2` of a polyline
    /// (overlapping segments do not add up).
    pub fn polyline(&mut self, points: &[(f32, f32)], thickness: f32, delta: f32) {
        self.polylines(&[points], thickness, delta);
    }

    /// [`Canvas::polyline`] for several paths at once: where they cross or
    /// meet (the branches of an airway) `delta` is still added only once.
    pub fn polylines(&mut self, paths: &[&[(f32, f32)]], thickness: f32, delta: f32) {
        let r = thickness / 2.0;
        let mut covered = vec![false; self.px.len()];
        for pair in paths.iter().flat_map(|points| points.windows(2)) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            let (x0, x1, y0, y1) = self.bounds(
                (ax + bx) / 2.0,
                (ay + by) / 2.0,
                (ax - bx).abs() / 2.0 + r,
                (ay - by).abs() / 2.0 + r,
            );
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = (dx * dx + dy * dy).max(1e-6);
            for y in y0..y1 {
                for x in x0..x1 {
                    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                    let t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
                    let d2 = (px - ax - t * dx).powi(2) + (py - ay - t * dy).powi(2);
                    if d2 <= r * r {
                        covered[y * self.width + x] = true;
                    }
                }
            }
        }
        for (p, hit) in self.px.iter_mut().zip(covered) {
            if hit {
                *p = (*p + delta).clamp(0.0, 1.0);
            }
        }
    }

    // Positional coordinates read best for a drawing primitive.
    #[allow(clippy::too_many_arguments)]
    /// Scatters `count` small soft blobs inside an ellipse: patchy opacities.
    pub fn blotches(
        &mut self,
        rng: &mut SplitMix64,
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        count: usize,
        value: f32,
        size: f32,
    ) {
        for _ in 0..count {
            let angle = rng.range_f64(0.0, std::f64::consts::TAU) as f32;
            let radius = rng.unit().sqrt() as f32;
            let x = cx + rx * radius * angle.cos();
            let y = cy + ry * radius * angle.sin();
            let r = size * rng.range_f64(0.5, 1.2) as f32;
            self.ellipse(
                x,
                y,
                r,
                r * rng.range_f64(0.6, 1.0) as f32,
                value,
                0.5,
                r * 0.8,
            );
        }
    }

    /// Adds uniform noise of amplitude `amount`.
    pub fn noise(&mut self, rng: &mut SplitMix64, amount: f32) {
        for p in &mut self.px {
            *p = (*p + (rng.unit() as f32 - 0.5) * 2.0 * amount).clamp(0.0, 1.0);
        }
    }

    pub fn to_gray(&self) -> GrayImage {
        GrayImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let v = self.px[y as usize * self.width + x as usize];
            Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_paints_inside_and_not_far_outside() {
        let mut c = Canvas::new(40, 40, 0.0);
        c.ellipse(20.0, 20.0, 8.0, 5.0, 1.0, 1.0, 1.0);
        let img = c.to_gray();
        assert_eq!(img.get_pixel(20, 20)[0], 255);
        assert_eq!(img.get_pixel(20, 30)[0], 0);
        assert_eq!(img.get_pixel(2, 2)[0], 0);
    }

    #[test]
    fn polyline_marks_its_path() {
        let mut c = Canvas::new(30, 30, 0.0);
        c.polyline(&[(2.0, 15.0), (28.0, 15.0)], 2.0, 0.9);
        let img = c.to_gray();
        assert!(img.get_pixel(15, 15)[0] > 200);
        assert_eq!(img.get_pixel(15, 5)[0], 0);
    }
}
