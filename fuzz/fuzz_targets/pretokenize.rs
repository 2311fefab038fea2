//! For each built-in split pattern: pretokens cover the text exactly, in order, none empty,
//! and equal what fancy-regex (tiktoken's engine) cuts with the pattern itself; chunk cuts
//! change neither pretokens nor special tokens.
#![no_main]

use std::sync::OnceLock;

use _core::corpus::chunk_ranges;
use _core::pretokenize::Pattern;
use _core::special::SpecialTokens;
use libfuzzer_sys::fuzz_target;

const PATTERNS: [Pattern; 3] = [Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k];

/// Each pattern's regex, compiled once (compiling o200k's Unicode classes takes longer than
/// checking an input).
fn regexes() -> &'static [fancy_regex::Regex] {
    static REGEXES: OnceLock<Vec<fancy_regex::Regex>> = OnceLock::new();
    REGEXES.get_or_init(|| {
        PATTERNS
            .iter()
            .map(|p| fancy_regex::Regex::new(p.regex()).expect("the pattern compiles"))
            .collect()
    })
}

fuzz_target!(|text: &str| {
    let specials =
        SpecialTokens::new(&["<|eot|>".to_string(), "\n\n".to_string()]).expect("valid specials");
    for (pattern, regex) in PATTERNS.iter().zip(regexes()) {
        let pieces = pattern
            .pretokenize(text)
            .expect("built-in patterns never fail");
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| !p.is_empty()));
        let reference: Vec<&str> = regex
            .find_iter(text)
            .map(|m| m.expect("no backtracking limit on these patterns").as_str())
            .collect();
        assert_eq!(pieces, reference, "{:?}", pattern.name());

        for target in [1, 7, 64] {
            let ranges = chunk_ranges(text, &specials, pattern, target);
            let mut whole = Vec::new();
            for r in &ranges {
                whole.extend(pretokens_and_specials(&text[r.clone()], &specials, pattern));
            }
            assert_eq!(whole, pretokens_and_specials(text, &specials, pattern));
        }
    }
});

fn pretokens_and_specials(text: &str, specials: &SpecialTokens, pattern: &Pattern) -> Vec<String> {
    let mut out = Vec::new();
    for seg in specials.segments(text) {
        match seg {
            _core::special::Segment::Text(t) => out.extend(
                pattern
                    .pretokenize(t)
                    .expect("built-in patterns never fail")
                    .into_iter()
                    .map(str::to_string),
            ),
            _core::special::Segment::Special(i) => out.push(format!("<special {i}>")),
        }
    }
    out
}
