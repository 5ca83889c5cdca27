//! Number formats of RESULTS.md.

use super::*;

/// A fraction as a percentage with one decimal (`–` for NaN).
pub(super) fn pct(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.1}", 100.0 * x)
    }
}

/// A mean over seeds with its 95 % half-width, in percent.
pub(super) fn pm(m: MeanCi) -> String {
    match (m.mean, m.half_width) {
        (None, _) => "–".into(),
        (Some(x), None) => format!("{} (1 seed)", pct(x)),
        (Some(x), Some(h)) => format!("{} ± {:.1}", pct(x), 100.0 * h),
    }
}

/// A 95 % interval in percent.
pub(super) fn span(b: (f64, f64)) -> String {
    format!("[{}, {}]", pct(b.0), pct(b.1))
}
