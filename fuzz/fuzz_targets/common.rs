//! A small tokenizer trained once on a fixed corpus, for the targets that need one.

use std::sync::OnceLock;

use _core::encode::Encoder;
use _core::pretokenize::Pattern;
use _core::train::{train_text, TrainOptions};
use _core::vocab::Vocab;

pub const SPECIALS: [&str; 2] = ["<|endoftext|>", "<|endoftext|><|endoftext|>"];

const ONE_THREAD: TrainOptions = TrainOptions {
    num_threads: Some(1),
    progress: false,
    window_bytes: 0,
    cancel: None,
};

pub fn specials() -> Vec<String> {
    SPECIALS.iter().map(|s| s.to_string()).collect()
}

pub fn encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        let corpus = "the cat sat on the mat. The dog's bone, 123 4567!\n\
                      héllo wörld 中文 😀 don't they'll <|endoftext|> aaaa bbbb\n"
            .repeat(20);
        let trained = train_text(&corpus, 400, &specials(), &Pattern::Gpt2, &ONE_THREAD).expect("trains");
        let merges = trained.merge_pairs();
        let vocab = Vocab::new(trained.vocab, &merges).expect("valid vocabulary");
        Encoder::new(vocab, &specials(), Pattern::Gpt2).expect("valid encoder")
    })
}
