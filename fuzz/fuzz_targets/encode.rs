//! The encoder against the simplest BPE: per pretoken, merge the lowest-ranked adjacent
//! pair until none is left; special tokens as their ids. And decode(encode(x)) == x.
#![no_main]

#[path = "common.rs"]
mod common;

use _core::pretokenize::pretokenize;
use _core::special::{Segment, SpecialTokens};
use _core::vocab::Vocab;
use _core::TokenId;
use libfuzzer_sys::fuzz_target;

fn simple_bpe(vocab: &Vocab, word: &[u8]) -> Vec<TokenId> {
    let mut ids: Vec<TokenId> = word.iter().map(|&b| vocab.byte_id(b)).collect();
    loop {
        let best = ids
            .windows(2)
            .enumerate()
            .filter_map(|(i, w)| vocab.merge_of(w[0], w[1]).map(|(rank, m)| (rank, i, m)))
            .min();
        let Some((_, i, m)) = best else { return ids };
        ids.splice(i..i + 2, [m]);
    }
}

fuzz_target!(|text: &str| {
    let encoder = common::encoder();
    let ids = encoder.encode(text).expect("memory");
    let specials = SpecialTokens::new(&common::specials()).expect("valid");
    let mut want = Vec::new();
    for seg in specials.segments(text) {
        match seg {
            Segment::Text(t) => {
                for p in pretokenize(t) {
                    want.extend(simple_bpe(encoder.vocab(), p.as_bytes()));
                }
            }
            Segment::Special(i) => want.push(encoder.special_ids()[i]),
        }
    }
    assert_eq!(ids, want, "{text:?}");
    assert_eq!(
        encoder.decode_bytes(&ids).expect("known ids"),
        text.as_bytes()
    );
});
