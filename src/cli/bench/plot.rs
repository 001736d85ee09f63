//! `--plot FILE.png`: latency over time (p50, p99 and max of every second, by send time) above
//! the percentile distribution (HdrHistogram's classic plot: latency against 1/(1-q) on a log
//! axis, so 99%, 99.9% and 99.99% are evenly spaced). Drawn with plotters' bitmap backend; text
//! uses the system's sans-serif font through fontconfig.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::latency::{LatencyRecorder, Percentiles};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1100;
/// The distribution's x axis runs to 1/(1-q) = 10^5, i.e. the 99.999th percentile.
const NINES: f64 = 5.0;

/// A latency series to draw: its name, colour and recorder.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: RGBColor,
    pub recorder: &'a LatencyRecorder,
}

pub const PRODUCE_COLOR: RGBColor = RGBColor(31, 119, 180);
pub const E2E_COLOR: RGBColor = RGBColor(214, 39, 40);

/// Distinct colours for runs with several phases.
pub fn palette() -> [RGBColor; 8] {
    [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ]
}

fn draw_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}

pub fn draw(path: &Path, title: &str, series: &[Series<'_>]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(draw_error)?;
    let (top, bottom) = root.split_vertically(HEIGHT / 2 - 20);
    over_time(&top, series)?;
    distribution(&bottom, series)?;
    root.present().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// Bounds of a log-scaled latency axis in ms that holds every value in `values`.
fn ms_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return 0.01..1.0;
    }
    (lo.max(0.001) / 1.5)..(hi * 1.5)
}

/// A line of the over-time chart: label, the percentile it shows, stroke width, opacity.
type Line = (&'static str, fn(&Percentiles) -> u64, u32, f64);

/// Tick text for a latency axis: as many decimals as the magnitude needs.
fn ms_label(v: f64) -> String {
    match v {
        v if v >= 10.0 => format!("{v:.0}"),
        v if v >= 1.0 => format!("{v:.1}"),
        v if v >= 0.1 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn over_time(area: &DrawingArea<BitMapBackend<'_>, Shift>, series: &[Series<'_>]) -> anyhow::Result<()> {
    let seconds = series.iter().map(|s| s.recorder.windows.len()).max().unwrap_or(0).max(1) as f64;
    let values = series.iter().flat_map(|s| s.recorder.windows.iter()).filter(|h| !h.is_empty()).flat_map(|h| {
        let p = Percentiles::of(h);
        [us_to_ms(p.p50), us_to_ms(p.max)]
    });
    let mut chart = ChartBuilder::on(area)
        .caption("latency over time (per second of send time)", ("sans-serif", 20))
        .margin(15)
        .margin_right(45)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..seconds, ms_range(values).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since measurement start")
        .y_desc("latency (ms, log)")
        .y_labels(12)
        .y_label_formatter(&|v| ms_label(*v))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(draw_error)?;
    for s in series {
        let points = |pick: fn(&Percentiles) -> u64| -> Vec<(f64, f64)> {
            s.recorder
                .windows
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.is_empty())
                .map(|(i, h)| (i as f64 + 0.5, us_to_ms(pick(&Percentiles::of(h)))))
                .collect()
        };
        let lines: [Line; 3] =
            [("p50", |p| p.p50, 1, 0.5), ("p99", |p| p.p99, 3, 1.0), ("max", |p| p.max, 1, 0.35)];
        // With more than two series, p50 and max lines would bury the p99s: draw p99 only.
        let crowded = series.len() > 2;
        for (label, pick, width, alpha) in lines.into_iter().filter(|l| !crowded || l.0 == "p99") {
            let style = s.color.mix(alpha).stroke_width(width);
            chart
                .draw_series(LineSeries::new(points(pick), style))
                .map_err(draw_error)?
                .label(format!("{} {label}", s.name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    legend(&mut chart)
}

/// 1/(1-q) for q from 0 to 1 - 10^-NINES, 40 points a decade.
fn quantile_points() -> impl Iterator<Item = (f64, f64)> {
    (0..=(NINES * 40.0) as i32).map(|i| {
        let x = 10f64.powf(f64::from(i) / 40.0);
        (x, 1.0 - 1.0 / x)
    })
}

fn percentile_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 1.0 / x);
    match x.log10().round() as i32 {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        n => format!("{q:.*}%", usize::try_from(n - 2).unwrap_or(0)),
    }
}

fn distribution(area: &DrawingArea<BitMapBackend<'_>, Shift>, series: &[Series<'_>]) -> anyhow::Result<()> {
    let values = series.iter().filter(|s| !s.recorder.total.is_empty()).flat_map(|s| {
        [us_to_ms(s.recorder.total.min()), us_to_ms(s.recorder.total.max())]
    });
    let mut chart = ChartBuilder::on(area)
        .caption("latency by percentile", ("sans-serif", 20))
        .margin(15)
        .margin_right(45)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((1.0..10f64.powf(NINES)).log_scale(), ms_range(values).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_labels(12)
        .y_label_formatter(&|v| ms_label(*v))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(draw_error)?;
    for s in series.iter().filter(|s| !s.recorder.total.is_empty()) {
        let h = &s.recorder.total;
        let limit = 1.0 - 1.0 / h.len().max(1) as f64;
        let points: Vec<(f64, f64)> =
            quantile_points().filter(|(_, q)| *q <= limit.max(0.0)).map(|(x, q)| (x, us_to_ms(h.value_at_quantile(q)))).collect();
        let style = s.color.stroke_width(3);
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(draw_error)?
            .label(s.name.to_owned())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    legend(&mut chart)
}

fn legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, Y>>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(draw_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels_read_as_nines() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10000.0), "99.99%");
    }
}
