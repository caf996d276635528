//! Plots as SVG: loss curves (training and validation loss against
//! optimizer steps, as the study's Figures 3 and 4) and means with their
//! intervals (Table 1 as a chart): plain text output, so no font or image
//! library is needed to make them; any browser shows them.

use std::fmt::Write;

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Stroke colour (CSS).
    pub colour: String,
    /// `(x, y)` points in drawing order.
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Round tick positions covering `lo..hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

/// The height of a line of text and the mean width of a character at the
/// plots' 12-pixel sans-serif, for laying out names without a font.
const LINE: f64 = 14.0;
const CHAR: f64 = 6.0;

/// `text` broken at spaces into lines of at most `width` pixels (at
/// [`CHAR`] a character); a word longer than that is a line of its own.
fn wrap(text: &str, width: f64) -> Vec<String> {
    let most = ((width / CHAR).floor() as usize).max(1);
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= most => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

fn label(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 0.01 && v.abs() < 1e5) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{v:.1e}")
    }
}

/// The start of a plot `height` pixels high: the SVG element, a white
/// background, the title.
fn open_svg(title: &str, height: f64) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    svg
}

/// The y axis: grid lines and labels at round ticks of `y0..y1` (placed
/// by `sy`), the plot's frame and the rotated axis label.
fn y_axis(svg: &mut String, (y0, y1): (f64, f64), sy: impl Fn(f64) -> f64, y_label: &str) {
    for t in ticks(y0, y1) {
        let y = sy(t);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(t)
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
    let _ = write!(
        svg,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        HEIGHT / 2.0,
        HEIGHT / 2.0,
        escape(y_label)
    );
}

/// The value range of a plot: padded by 5%, from 0 when all values are
/// positive.
fn padded_range(lo: f64, hi: f64) -> (f64, f64) {
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (
        (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
        hi + pad,
    )
}

/// An SVG line plot of `series` with a title and axis labels.
///
/// ```
/// use medcap_train::plot::{Series, line_plot};
///
/// let svg = line_plot("FT-1", "iteration", "loss", &[Series {
///     label: "training".into(), colour: "#1f77b4".into(),
///     points: vec![(1.0, 2.5), (2.0, 1.5), (3.0, 1.0)],
/// }]);
/// assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
/// ```
pub fn line_plot(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let points = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let (y0, y1) = padded_range(y0, y1);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT);
    let sy = |y: f64| HEIGHT - BOTTOM - (y - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);

    let mut svg = open_svg(title, HEIGHT);
    for t in ticks(x0, x1) {
        let x = sx(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 16.0,
            label(t)
        );
    }
    y_axis(&mut svg, (y0, y1), sy, y_label);
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 10.0,
        escape(x_label)
    );
    for (i, s) in series.iter().enumerate() {
        let coords: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if coords.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle cx="{}" r="3" fill="{}"/>"#,
                coords[0].replace(',', "\" cy=\""),
                escape(&s.colour)
            );
        } else if !coords.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                escape(&s.colour),
                coords.join(" ")
            );
        }
        let ly = TOP + 16.0 + 16.0 * i as f64;
        let lx = WIDTH - RIGHT - 130.0;
        let _ = write!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            escape(&s.colour),
            lx + 26.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One series of an interval plot: a value and its interval per group.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalSeries {
    /// Legend text.
    pub label: String,
    /// Colour (CSS).
    pub colour: String,
    /// `(mean, low, high)` per group, in the groups' order; NaN where the
    /// series has no value.
    pub values: Vec<(f64, f64, f64)>,
}

/// An SVG plot of means with their intervals (a dot and a whisker per
/// series and group, the series side by side within each group), with a
/// title, the groups' names under the x axis and a y-axis label; the axes,
/// ticks and legend as [`line_plot`] draws them.
///
/// ```
/// use medcap_train::plot::{IntervalSeries, interval_plot};
///
/// let svg = interval_plot("Table 1", "mean, 95% CI", &["BLEU", "ROUGE-L"], &[IntervalSeries {
///     label: "FT-2".into(), colour: "#2ca02c".into(),
///     values: vec![(0.22, 0.20, 0.25), (0.47, 0.45, 0.49)],
/// }]);
/// // A dot per value, and one in the legend.
/// assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == 3);
/// ```
pub fn interval_plot(
    title: &str,
    y_label: &str,
    groups: &[&str],
    series: &[IntervalSeries],
) -> String {
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for v in series
        .iter()
        .flat_map(|s| s.values.iter())
        .flat_map(|&(m, lo, hi)| [m, lo, hi])
        .filter(|v| v.is_finite())
    {
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    if y0 > y1 {
        (y0, y1) = (0.0, 1.0);
    }
    let (y0, y1) = padded_range(y0, y1);
    let group_width = (WIDTH - LEFT - RIGHT) / groups.len().max(1) as f64;
    // Series share the middle 70% of a group, evenly.
    let slot = group_width * 0.7 / series.len().max(1) as f64;
    let sx = |g: usize, k: usize| {
        LEFT + group_width * g as f64 + group_width * 0.15 + slot * (k as f64 + 0.5)
    };
    let sy = |y: f64| HEIGHT - BOTTOM - (y - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);
    // Group names wrapped at spaces to their group's width, a line under
    // another; the legend in a row under the longest, so that neither
    // covers a value or another name.
    let names: Vec<Vec<String>> = groups
        .iter()
        .map(|name| wrap(name, group_width - 4.0))
        .collect();
    let lines = names.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let legend_y = HEIGHT - BOTTOM + 16.0 + LINE * lines as f64 + 6.0;
    let mut svg = open_svg(title, HEIGHT.max(legend_y + 12.0));
    y_axis(&mut svg, (y0, y1), sy, y_label);
    for (g, lines) in names.iter().enumerate() {
        let x = LEFT + group_width * (g as f64 + 0.5);
        for (i, line) in lines.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                HEIGHT - BOTTOM + 16.0 + LINE * i as f64,
                escape(line)
            );
        }
    }
    let legend_widths: Vec<f64> = series
        .iter()
        .map(|s| 20.0 + CHAR * s.label.chars().count() as f64 + 16.0)
        .collect();
    let mut lx = (WIDTH - legend_widths.iter().sum::<f64>()) / 2.0;
    for (k, s) in series.iter().enumerate() {
        let colour = escape(&s.colour);
        for (g, &(mean, lo, hi)) in s.values.iter().enumerate().take(groups.len()) {
            if !mean.is_finite() {
                continue;
            }
            let x = sx(g, k);
            if lo.is_finite() && hi.is_finite() {
                let _ = write!(
                    svg,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5"><title>{} {}: [{}, {}]</title></line>"#,
                    sy(lo),
                    sy(hi),
                    escape(&s.label),
                    escape(groups[g]),
                    label(lo),
                    label(hi)
                );
            }
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{} {}: {}</title></circle>"#,
                sy(mean),
                escape(&s.label),
                escape(groups[g]),
                label(mean)
            );
        }
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{legend_y:.1}" r="3.5" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 10.0,
            lx + 20.0,
            legend_y + 4.0,
            escape(&s.label)
        );
        lx += legend_widths[k];
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.13, 0.91);
        assert!(t.first().unwrap() >= &0.13 && t.last().unwrap() <= &0.91 && t.len() >= 3);
    }

    #[test]
    fn names_wrap_at_spaces_to_their_width() {
        assert_eq!(wrap("BLEU", 74.0), ["BLEU"]);
        assert_eq!(wrap("Findings F1", 76.0), ["Findings F1"]);
        assert_eq!(
            wrap("Findings F1 vs truth", 76.0),
            ["Findings F1", "vs truth"]
        );
        assert_eq!(wrap("Pneumomediastinum", 40.0), ["Pneumomediastinum"]);
        assert_eq!(wrap("", 40.0), [""]);
    }

    /// The legend lies under the axis and the group names, so it covers no
    /// value; a long name is wrapped to its group's width (Table 1's seven
    /// groups here).
    #[test]
    fn the_interval_legend_and_names_stay_clear_of_the_values() {
        let groups = [
            "BLEU",
            "BERT-F1",
            "ROUGE-1",
            "ROUGE-2",
            "ROUGE-L",
            "Findings F1",
            "Findings F1 vs truth",
        ];
        let series: Vec<IntervalSeries> = ["BLIP", "FT-1", "FT-2"]
            .iter()
            .map(|name| IntervalSeries {
                label: (*name).into(),
                colour: "#000".into(),
                values: vec![(0.9, 0.85, 0.95); groups.len()],
            })
            .collect();
        let svg = interval_plot("t", "y", &groups, &series);
        let cy = |circle: &str| -> f64 {
            let after = circle.split("cy=\"").nth(1).unwrap();
            after.split('"').next().unwrap().parse().unwrap()
        };
        let circles: Vec<&str> = svg.split("<circle ").skip(1).collect();
        // Values carry a tooltip; the legend's dots are empty elements.
        let (legend, values): (Vec<&str>, Vec<&str>) = circles
            .into_iter()
            .partition(|c| c.split('>').next().unwrap().ends_with('/'));
        assert_eq!((values.len(), legend.len()), (3 * 7, 3));
        let frame_bottom = HEIGHT - BOTTOM;
        assert!(values.iter().all(|c| cy(c) < frame_bottom), "{svg}");
        assert!(
            legend.iter().all(|c| cy(c) > frame_bottom + 2.0 * LINE),
            "{svg}"
        );
        // The last name takes two lines, the others one.
        assert!(svg.contains(">Findings F1</text>") && svg.contains(">vs truth</text>"));
        assert!(!svg.contains(">Findings F1 vs truth</text>"), "{svg}");
        assert!(svg.contains(">ROUGE-L</text>"), "{svg}");
    }

    #[test]
    fn labels_are_escaped() {
        let svg = line_plot("a<b", "x", "y", &[]);
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
    }
}
