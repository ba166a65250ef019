//! Charts drawn on the server as SVG markup (no script needed): a strip plot of durations with
//! each group's box (quartiles) and median.

use maud::{Markup, html};

/// One row of a strip plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub values_ms: Vec<f64>,
}

const WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 150.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 30.0;
const AXIS: f64 = 28.0;
/// Dots drawn per row at most: a larger series is drawn as this many of its quantiles, evenly
/// spaced, which keep its shape (a page of 30,000 dots would weigh megabytes).
const MAX_DOTS: usize = 200;

/// The values to draw as dots: all of them, or `MAX_DOTS` evenly spaced quantiles.
fn dots(values: &[f64], sorted: &[f64]) -> Vec<f64> {
    if values.len() <= MAX_DOTS {
        return values.to_vec();
    }
    (0..MAX_DOTS)
        .map(|i| quantile(sorted, (i as f64 + 0.5) / MAX_DOTS as f64))
        .collect()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

/// A step of 1, 2 or 5 × 10ⁿ giving about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Durations in seconds per series: dots (jittered by their index; for a large series, its
/// quantiles), the box of the quartiles and the median; `title` names the measure for screen
/// readers.
pub fn strip_plot(title: &str, series: &[Series]) -> Markup {
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values_ms.iter().copied())
        .collect();
    if all.is_empty() {
        return html! { p.muted { "no " (title) " values yet" } };
    }
    let max_seconds = all.iter().copied().fold(0.0, f64::max) / 1000.0;
    let step = tick_step(max_seconds.max(0.001));
    let top = (max_seconds / step).ceil().max(1.0) * step;
    let plot_width = WIDTH - LABEL_WIDTH - RIGHT;
    let x = |ms: f64| LABEL_WIDTH + (ms / 1000.0) / top * plot_width;
    let height = series.len() as f64 * ROW + AXIS;
    let ticks: Vec<f64> = (0..=((top / step).round() as usize))
        .map(|i| i as f64 * step)
        .collect();
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-label=(title) {
            title { (title) }
            @for tick in &ticks {
                @let tx = x(tick * 1000.0);
                line.grid x1=(tx) x2=(tx) y1="0" y2=(height - AXIS) {}
                text.tick x=(tx) y=(height - AXIS + 16.0) text-anchor="middle" { (format_seconds(*tick)) }
            }
            text.tick x=(WIDTH - RIGHT) y=(height - 2.0) text-anchor="end" { "seconds" }
            @for (row, s) in series.iter().enumerate() {
                @let middle = row as f64 * ROW + ROW / 2.0;
                text.label x=(LABEL_WIDTH - 8.0) y=(middle + 4.0) text-anchor="end" {
                    (truncate(&s.label, 20)) " (" (s.values_ms.len()) ")"
                }
                @if !s.values_ms.is_empty() {
                    @let sorted = sorted(&s.values_ms);
                    @let (q1, median, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.5), quantile(&sorted, 0.75));
                    rect.box x=(x(q1)) y=(middle - 9.0) width=((x(q3) - x(q1)).max(1.0)) height="18" {}
                    @for (index, value) in dots(&s.values_ms, &sorted).iter().enumerate() {
                        @let jitter = ((index * 7) % 11) as f64 - 5.0;
                        circle.dot cx=(x(*value)) cy=(middle + jitter) r="3.5" {
                            title { (s.label) ": " (format_seconds(value / 1000.0)) " s" }
                        }
                    }
                    line.median x1=(x(median)) x2=(x(median)) y1=(middle - 11.0) y2=(middle + 11.0) {}
                }
            }
        }
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

fn format_seconds(seconds: f64) -> String {
    if seconds == seconds.round() || seconds >= 10.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds:.1}")
    }
}

fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(n - 1).collect::<String>())
    }
}
