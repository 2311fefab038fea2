//! Pretokenization: cutting text into the pieces that BPE then encodes one by one, with a
//! split pattern chosen by name (`Pattern`).
//!
//! The built-in patterns are GPT-2's (`gpt2`), GPT-4's (`cl100k`) and GPT-4o's (`o200k`),
//! each by a hand-written scanner that gives exactly the pieces tiktoken's regex engine
//! gives (the speed comes from not running a general regex engine; each scanner's tests
//! check it against fancy-regex running the pattern itself). Any other pattern is run by
//! fancy-regex (`custom`, the slow path). Character classes come from regex-syntax's
//! Unicode tables (`classes`).
//!
//! The encoder consumes pretokens as their end offsets, a block at a time (`Ends`); each
//! pattern's scanner is one `Ends`, and `Pattern::scan` hands the right one to the caller's
//! code, compiled once per scanner.

mod ascii;
mod blocks;
mod cl100k;
mod cl100k_o200k_blocks;
mod classes;
mod custom;
mod ends;
mod gpt2;
mod gpt2_blocks;
mod o200k;
mod simd;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use crate::error::{BpeError, Result};

pub use classes::UNICODE_VERSION;
pub use custom::CustomPattern;
pub use ends::{Ends, BLOCKS_PER_CALL, MAX_ENDS};
pub use gpt2::{is_letter, is_number, is_space};

/// GPT-2's pattern, as tiktoken's `r50k_base` spells it (since tiktoken 0.7).
pub const GPT2_REGEX: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";
/// GPT-2's pattern as earlier tiktoken releases spell it: the same pretokens.
pub const GPT2_REGEX_GREEDY: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// GPT-2's pattern as its own `encoder.py` (and Hugging Face's `ByteLevel`) spells it:
/// the same pretokens.
pub const GPT2_REGEX_ORIGINAL: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// tiktoken's `cl100k_base` pattern.
pub const CL100K_REGEX: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";
/// tiktoken's `o200k_base` pattern.
pub const O200K_REGEX: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+",
);

/// The built-in pattern `name` stands for: bpelm's names, and tiktoken's encodings'.
fn named(name: &str) -> Option<Pattern> {
    match name {
        "gpt2" | "r50k_base" | "p50k_base" => Some(Pattern::Gpt2),
        "cl100k" | "cl100k_base" => Some(Pattern::Cl100k),
        "o200k" | "o200k_base" => Some(Pattern::O200k),
        _ => None,
    }
}

/// A split pattern.
#[derive(Clone, Debug, Default)]
pub enum Pattern {
    #[default]
    Gpt2,
    Cl100k,
    O200k,
    /// Any other regular expression (the slow path).
    Custom(Arc<CustomPattern>),
}

/// Work on a text's pretoken ends, whichever scanner gives them (see `Pattern::scan`).
pub trait WithEnds {
    type Output;
    fn run<E: Ends>(self, ends: E) -> Self::Output;
}

/// Which build of the block scanners `Pattern::scan` runs on this processor: `"avx2"`
/// (AVX2 masks, the encode loop compiled for AVX2, BMI and LZCNT) or `"baseline"` (see
/// `simd`).
pub fn vector_build() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if simd::wide_available() {
        return "avx2";
    }
    "baseline"
}

/// The patterns with a scanner of their own.
#[derive(Clone, Copy)]
enum BuiltIn {
    Gpt2,
    Cl100k,
    O200k,
}

/// Runs `work` on the ends that `pattern`'s block scanner, its masks made by `M`, cuts
/// `text` into (the caller's code and the scanner compiled together).
#[inline(always)]
fn scan_with<M: simd::ByteMasks, W: WithEnds>(pattern: BuiltIn, text: &str, work: W) -> W::Output {
    match pattern {
        BuiltIn::Gpt2 => work.run(gpt2::scanner::<M>(text)),
        BuiltIn::Cl100k => work.run(cl100k_o200k_blocks::scanner::<false, M>(text)),
        BuiltIn::O200k => work.run(cl100k_o200k_blocks::scanner::<true, M>(text)),
    }
}

/// `scan_with` compiled for AVX2, BMI and LZCNT, with AVX2's masks (see `simd`).
///
/// # Safety
/// The processor must have those features (`simd::wide_available`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
unsafe fn scan_wide<W: WithEnds>(pattern: BuiltIn, text: &str, work: W) -> W::Output {
    scan_with::<simd::Avx2, W>(pattern, text, work)
}

impl Pattern {
    /// The pattern `spec` names (`gpt2`, `cl100k`, `o200k`, or tiktoken's encoding names
    /// `r50k_base`, `p50k_base`, `cl100k_base`, `o200k_base`), or the pattern `spec` is:
    /// a built-in one's exact regex selects its scanner, any other regex runs on the
    /// regex engine. A bare word that is no known name is refused rather than taken as a
    /// regex that would split at that literal word.
    pub fn parse(spec: &str) -> Result<Pattern> {
        if let Some(pattern) = named(spec) {
            return Ok(pattern);
        }
        match spec {
            GPT2_REGEX | GPT2_REGEX_GREEDY | GPT2_REGEX_ORIGINAL => return Ok(Pattern::Gpt2),
            CL100K_REGEX => return Ok(Pattern::Cl100k),
            O200K_REGEX => return Ok(Pattern::O200k),
            _ => {}
        }
        let looks_like_a_name = !spec.is_empty()
            && spec
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if looks_like_a_name {
            return Err(BpeError::InvalidArgument(format!(
                "unknown split pattern {spec:?}: the names are gpt2, cl100k and o200k \
                 (or pass a regular expression)"
            )));
        }
        Ok(Pattern::Custom(Arc::new(CustomPattern::new(spec)?)))
    }

    /// The built-in pattern's name (`gpt2`, `cl100k`, `o200k`), or `None` for a custom one.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Pattern::Gpt2 => Some("gpt2"),
            Pattern::Cl100k => Some("cl100k"),
            Pattern::O200k => Some("o200k"),
            Pattern::Custom(_) => None,
        }
    }

    /// The regular expression the pattern is (for a built-in one, tiktoken's spelling).
    pub fn regex(&self) -> &str {
        match self {
            Pattern::Gpt2 => GPT2_REGEX,
            Pattern::Cl100k => CL100K_REGEX,
            Pattern::O200k => O200K_REGEX,
            Pattern::Custom(c) => c.source(),
        }
    }

    /// What `parse` takes back: the name, or the regex of a custom pattern.
    pub fn spec(&self) -> &str {
        self.name().unwrap_or_else(|| self.regex())
    }

    /// Builds the pattern's tables now rather than on the first text.
    pub fn prepare(&self) {
        match self {
            Pattern::Gpt2 | Pattern::Cl100k => {
                classes::letter_table();
            }
            Pattern::O200k => {
                classes::case_table();
            }
            Pattern::Custom(_) => {}
        }
    }

    /// Runs `work` on the pretoken ends of `text`. Errors only for a custom pattern the
    /// regex engine gives up on (its backtracking limit).
    #[inline(always)]
    pub fn scan<W: WithEnds>(&self, text: &str, work: W) -> Result<W::Output> {
        let built_in = match self {
            Pattern::Gpt2 => BuiltIn::Gpt2,
            Pattern::Cl100k => BuiltIn::Cl100k,
            Pattern::O200k => BuiltIn::O200k,
            Pattern::Custom(c) => {
                let mut ends = c.ends(text);
                let out = work.run(&mut ends);
                ends.finish()?;
                return Ok(out);
            }
        };
        #[cfg(target_arch = "x86_64")]
        if simd::wide_available() {
            // SAFETY: the processor has the features `scan_wide` is compiled for.
            return Ok(unsafe { scan_wide(built_in, text, work) });
        }
        Ok(scan_with::<simd::Baseline, W>(built_in, text, work))
    }

    /// Calls `f` on each pretoken of `text`, in order; together they cover the text.
    #[inline]
    pub fn for_each_pretoken<'a>(&self, text: &'a str, f: impl FnMut(&'a str)) -> Result<()> {
        struct Visit<'a, F>(&'a str, F);
        impl<'a, F: FnMut(&'a str)> WithEnds for Visit<'a, F> {
            type Output = ();
            #[inline(always)]
            fn run<E: Ends>(self, ends: E) {
                ends::for_each(self.0, ends, self.1)
            }
        }
        self.scan(text, Visit(text, f))
    }

    /// The pretokens of `text`, collected.
    pub fn pretokenize<'a>(&self, text: &'a str) -> Result<Vec<&'a str>> {
        let mut out = Vec::with_capacity(text.len() / 4 + 1);
        self.for_each_pretoken(text, |p| out.push(p))?;
        Ok(out)
    }

    /// Whether every pretoken boundary survives cutting the text between a `\n` (which a
    /// non-whitespace character precedes) and `next`, a non-whitespace character: then no
    /// pretoken crosses the cut, and what follows it is split as if it started a text.
    /// True for the built-in patterns, except o200k's `[\r\n/]*`, which carries a `/`
    /// after a newline into the pretoken before it; false for custom patterns, about which
    /// nothing is known (they are cut only at special tokens).
    pub fn cuts_after_newline_before(&self, next: char) -> bool {
        match self {
            Pattern::Gpt2 | Pattern::Cl100k => true,
            Pattern::O200k => next != '/',
            Pattern::Custom(_) => false,
        }
    }
}

/// Builds every built-in pattern's character tables now. The bindings call it when the
/// module is imported: a table is a few MB while it is built, and building it on first use
/// would be an allocation no caller can recover from under a memory limit set later.
pub fn prepare_tables() {
    classes::letter_table();
    classes::case_table();
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.regex() == other.regex()
    }
}

impl Eq for Pattern {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::testing::{check_against_regex, check_pathological_inputs, split_with};
    use super::*;

    #[test]
    fn each_built_in_scanner_agrees_with_the_regex_engine() {
        for pattern in [Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k] {
            check_against_regex(&pattern, pattern.regex());
        }
        // The other spellings of GPT-2's pattern that select its scanner.
        for spelling in [GPT2_REGEX_GREEDY, GPT2_REGEX_ORIGINAL] {
            check_against_regex(&Pattern::Gpt2, spelling);
        }
    }

    #[test]
    fn pathological_inputs_are_linear() {
        for pattern in [Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k] {
            check_pathological_inputs(&pattern);
        }
    }

    #[test]
    fn names_and_regexes_select_the_scanners() {
        for (spec, name) in [
            ("gpt2", "gpt2"),
            ("r50k_base", "gpt2"),
            (GPT2_REGEX, "gpt2"),
            (GPT2_REGEX_GREEDY, "gpt2"),
            (GPT2_REGEX_ORIGINAL, "gpt2"),
            ("cl100k", "cl100k"),
            ("cl100k_base", "cl100k"),
            (CL100K_REGEX, "cl100k"),
            ("o200k", "o200k"),
            (O200K_REGEX, "o200k"),
        ] {
            let pattern = Pattern::parse(spec).unwrap();
            assert_eq!(pattern.name(), Some(name), "{spec}");
            assert_eq!(Pattern::parse(pattern.spec()).unwrap(), pattern);
        }
        let custom = Pattern::parse(r"\w+|\s+").unwrap();
        assert_eq!((custom.name(), custom.spec()), (None, r"\w+|\s+"));
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, needle) in [
            ("cl100K", "unknown split pattern \"cl100K\""),
            ("gpt-4", "unknown split pattern"),
            ("", "may not be empty"),
            ("(unclosed", "not a pattern bpelm can run"),
        ] {
            let err = Pattern::parse(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
    }

    #[test]
    fn custom_patterns_keep_the_text_between_matches() {
        let pattern = Pattern::parse(r"[a-z]+").unwrap();
        assert_eq!(split_with(&pattern, "ab, cd!"), ["ab", ", ", "cd", "!"]);
        assert_eq!(split_with(&pattern, ""), Vec::<&str>::new());
        // Empty matches cut nothing.
        let pattern = Pattern::parse(r"x*").unwrap();
        assert_eq!(split_with(&pattern, "abxxc"), ["ab", "xx", "c"]);
        // Look-ahead, as in GPT-2's pattern, works on the regex engine too.
        let pattern = Pattern::parse(r"\s+(?!\S)|\s+|\S+").unwrap();
        assert_eq!(split_with(&pattern, "a   b"), ["a", "  ", " ", "b"]);
    }

    #[test]
    fn a_custom_pattern_that_gives_up_is_an_error() {
        // Catastrophic backtracking: fancy-regex stops at its backtracking limit.
        let pattern = Pattern::parse(r"(?:(a)\1?)+(?=b)").unwrap();
        let text = "a".repeat(40);
        let err = pattern.for_each_pretoken(&text, |_| {}).unwrap_err();
        assert!(err.to_string().contains("failed on the text"), "{err}");
    }

    /// On-CPU time of this thread (Linux), so that other busy processes on a shared machine
    /// distort the measurement less than wall time; wall time elsewhere.
    fn thread_seconds(wall: std::time::Instant) -> f64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(|| wall.elapsed().as_secs_f64(), |ns| ns / 1e9)
    }

    /// Throughput of each pattern's scanner on English text; run with
    /// `BPELM_BENCH_TEXT=file cargo test --release -- --ignored --nocapture pretokenize_throughput`.
    #[test]
    #[ignore]
    fn pretokenize_throughput() {
        let path = std::env::var("BPELM_BENCH_TEXT").unwrap_or_default();
        let text = if path.is_empty() {
            "The quick brown fox jumps over the lazy dog. It's 2024, isn't it?\n".repeat(200_000)
        } else {
            std::fs::read_to_string(&path).expect("BPELM_BENCH_TEXT names a UTF-8 file")
        };
        let mb = text.len() as f64 / 1e6;
        let custom = Pattern::parse(&format!("{CL100K_REGEX}|(?:)")).unwrap();
        for pattern in [Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k, custom] {
            let mut count = 0usize;
            pattern.for_each_pretoken(&text, |_| count += 1).unwrap(); // warm-up, tables
            let wall = std::time::Instant::now();
            // Best of several runs: the least disturbed by other processes.
            let mut best = f64::MAX;
            for _ in 0..5 {
                let start = thread_seconds(wall);
                let mut n = 0usize;
                pattern.for_each_pretoken(&text, |p| n += p.len()).unwrap();
                best = best.min(thread_seconds(wall) - start);
                assert_eq!(n, text.len());
            }
            println!(
                "{:>6}: {mb:.1} MB, {count} pretokens, best of 5 (thread CPU time): {:.0} MB/s",
                pattern.name().unwrap_or("regex"),
                mb / best
            );
        }
        // GPT-2's scalar scanner behind the same `ScalarEnds` as cl100k's and o200k's: what
        // the block scanner is worth.
        let t = classes::letter_table();
        let wall = std::time::Instant::now();
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = thread_seconds(wall);
            let mut n = 0usize;
            let scalar = ends::ScalarEnds::new(&text, |b, s| gpt2::pretoken_end(t, b, s));
            ends::for_each(&text, scalar, |p| n += p.len());
            best = best.min(thread_seconds(wall) - start);
            assert_eq!(n, text.len());
        }
        println!("gpt2 scalar: {:.0} MB/s", mb / best);
    }
}
