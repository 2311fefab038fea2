//! Pretokens cover the text exactly, in order, none empty; the scanner the encoder uses
//! cuts the same pretokens; chunk cuts change neither pretokens nor special tokens.
#![no_main]

use _core::corpus::chunk_ranges;
use _core::pretokenize::{for_each_pretoken, pretokenize};
use _core::special::SpecialTokens;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let pieces = pretokenize(text);
    assert_eq!(pieces.concat(), text);
    assert!(pieces.iter().all(|p| !p.is_empty()));
    let mut again = Vec::new();
    for_each_pretoken(text, |p| again.push(p));
    assert_eq!(pieces, again);

    let specials =
        SpecialTokens::new(&["<|eot|>".to_string(), "\n\n".to_string()]).expect("valid specials");
    for target in [1, 7, 64] {
        let ranges = chunk_ranges(text, &specials, target);
        let mut whole = Vec::new();
        for r in &ranges {
            whole.extend(pretokens_and_specials(&text[r.clone()], &specials));
        }
        assert_eq!(whole, pretokens_and_specials(text, &specials));
    }
});

fn pretokens_and_specials<'a>(text: &'a str, specials: &SpecialTokens) -> Vec<String> {
    let mut out = Vec::new();
    for seg in specials.segments(text) {
        match seg {
            _core::special::Segment::Text(t) => {
                out.extend(pretokenize(t).into_iter().map(str::to_string))
            }
            _core::special::Segment::Special(i) => out.push(format!("<special {i}>")),
        }
    }
    out
}
