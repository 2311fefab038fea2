//! Test helpers: each scanner against fancy-regex running its pattern, the engine tiktoken
//! splits with.

use super::Pattern;

/// A small deterministic generator for the tests' random texts (a 64-bit LCG).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    /// A number below `k`.
    pub fn below(&mut self, k: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize % k
    }
}

/// `pattern`'s pretokens of `text`, checked to be non-empty and to cover the text.
pub fn split_with<'a>(pattern: &Pattern, text: &'a str) -> Vec<&'a str> {
    let pieces = pattern
        .pretokenize(text)
        .expect("a built-in pattern never fails");
    assert_eq!(pieces.concat(), text);
    assert!(pieces.iter().all(|p| !p.is_empty()), "{pieces:?}");
    pieces
}

/// The matches of `regex` in `text` (which must cover it, as the built-in patterns do).
pub fn regex_split<'a>(regex: &fancy_regex::Regex, text: &'a str) -> Vec<&'a str> {
    let pieces: Vec<&str> = regex
        .find_iter(text)
        .map(|m| {
            m.expect("the regex engine gives up on no short text")
                .as_str()
        })
        .collect();
    assert_eq!(pieces.concat(), text, "the pattern leaves a gap");
    pieces
}

/// Characters that reach every branch of the patterns: each letter category (cased,
/// title case, modifier, other), marks (non-spacing and spacing), numbers of three kinds,
/// whitespace of one, two and three bytes, `\r`, `\n`, `/`, apostrophes with the letters
/// of contractions in both cases (and `ſ`, which case-folds to `s`, and the Kelvin sign,
/// which folds to `k`), and characters of no class.
const ALPHABET: &[&str] = &[
    "a", "b", "Z", "Q", "é", "É", "ß", "ǅ", "ʰ", "中", "א", "\u{301}", "\u{903}", "0", "7", "٣",
    "²", "Ⅻ", " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u{a0}", "\u{3000}", "\u{85}", "'",
    "'", "s", "S", "ſ", "t", "T", "l", "L", "v", "V", "e", "E", "r", "R", "d", "m", "M",
    "\u{212a}", ".", ",", "/", "!", "-", "\x1c", "😀", "’",
];

/// `pattern` agrees with fancy-regex running `regex` on thousands of texts drawn from
/// `ALPHABET`, at lengths that reach across the block scanners' 64-byte blocks.
pub fn check_against_regex(pattern: &Pattern, regex: &str) {
    let regex = fancy_regex::Regex::new(regex).expect("the pattern compiles");
    let mut lcg = Lcg::new(0x2545_f491_4f6c_dd1d);
    let mut rand = |k: usize| lcg.below(k);
    for round in 0..6000 {
        let len = rand(if round % 8 == 0 { 120 } else { 24 });
        // Some rounds from a few characters only, so that runs grow long.
        let pool: Vec<&str> = if round % 3 == 0 {
            (0..3).map(|_| ALPHABET[rand(ALPHABET.len())]).collect()
        } else {
            ALPHABET.to_vec()
        };
        let text: String = (0..len).map(|_| pool[rand(pool.len())]).collect();
        assert_eq!(
            split_with(pattern, &text),
            regex_split(&regex, &text),
            "{text:?}"
        );
    }
}

/// `pattern` splits 1 MB texts that are one long run of a kind (or alternate two kinds)
/// without a quadratic blow-up: each takes milliseconds in release builds, and a
/// quadratic scan would take minutes even there.
pub fn check_pathological_inputs(pattern: &Pattern) {
    let n = 1 << 20;
    for piece in [
        " ", "\n", " \n", "a", "A", "aA", "中", "\u{301}", "A\u{301}", "7", ".", "'", "'s", "/",
        "\n/", "\r\n", "\u{3000}", "ʰA",
    ] {
        let mut text = piece.repeat(n / piece.len());
        split_with(pattern, &text);
        text.push('x');
        split_with(pattern, &text);
    }
}
