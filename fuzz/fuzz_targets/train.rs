//! Training on tiny corpora, with special tokens taken from the input too: never a panic,
//! and the result is a vocabulary its own encoder accepts and round-trips the corpus with,
//! for each built-in split pattern.
#![no_main]

use _core::encode::Encoder;
use _core::pretokenize::Pattern;
use _core::train::{train_text, TrainOptions};
use _core::vocab::Vocab;
use libfuzzer_sys::fuzz_target;

const ONE_THREAD: TrainOptions = TrainOptions {
    num_threads: Some(1),
    progress: false,
    window_bytes: 0,
    cancel: None,
};

fuzz_target!(|input: (&str, Vec<String>, u16)| {
    let (text, specials, extra) = input;
    if text.len() > 4096 || specials.len() > 4 {
        return;
    }
    let vocab_size = 256 + specials.len() + usize::from(extra % 64);
    let patterns = [Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k];
    let pattern = patterns[usize::from(extra / 64) % 3].clone();
    let Ok(trained) = train_text(text, vocab_size, &specials, &pattern, &ONE_THREAD) else {
        return;
    };
    assert!(trained.vocab.len() <= vocab_size);
    let merges = trained.merge_pairs();
    let vocab = Vocab::new(trained.vocab, &merges).expect("trained vocabulary is valid");
    let encoder = Encoder::new(vocab, &specials, pattern).expect("its encoder accepts it");
    let ids = encoder.encode(text).expect("memory");
    assert_eq!(
        encoder.decode_bytes(&ids).expect("known ids"),
        text.as_bytes()
    );
});
