//! Progress bars on stderr, one style for the whole package: the layout of the Python side's
//! tqdm bars (`what: 42%|=====     | 12.3 MB/29.0 MB [00:01<00:02, 9.8 MB/s]`) and its
//! decimal units (1 MB = 10^6 bytes, as every summary bpelm prints).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a bar counts: bytes (shown in decimal MB) or items (merges).
#[derive(Clone, Copy)]
pub enum Unit {
    Bytes,
    Items,
}

/// A bar of `len` units labelled `what`, drawn on stderr; hidden when `show` is false.
pub fn bar(show: bool, len: u64, what: &str, unit: Unit) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let style = style(what, unit).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style)
}

/// A counter of bytes labelled `what`, for work whose total is unknown (a pipe); hidden
/// when `show` is false.
pub fn counter(show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let template = format!("{what}: {{decimal_bytes}} [{{elapsed}}, {{decimal_bytes_per_sec}}]");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
}

fn style(what: &str, unit: Unit) -> Result<ProgressStyle, indicatif::style::TemplateError> {
    let counts = match unit {
        Unit::Bytes => {
            "{decimal_bytes}/{decimal_total_bytes} [{elapsed}<{eta}, {decimal_bytes_per_sec}]"
        }
        Unit::Items => "{human_pos}/{human_len} [{elapsed}<{eta}, {per_sec}]",
    };
    let template = format!("{what}: {{percent:>3}}%|{{wide_bar}}| {counts}");
    Ok(ProgressStyle::with_template(&template)?.progress_chars("=> "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_templates_parse() {
        // A template error would silently fall back to indicatif's default look.
        assert!(style("encode", Unit::Bytes).is_ok());
        assert!(style("merge", Unit::Items).is_ok());
        assert!(ProgressStyle::with_template(
            "{decimal_bytes} [{elapsed}, {decimal_bytes_per_sec}]"
        )
        .is_ok());
    }
}
