//! Parsing vocab.json and merges.txt: any bytes give a vocabulary or an error, never a
//! panic; a vocabulary read back from what it writes is the same.
#![no_main]

use _core::vocab::Vocab;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &[u8])| {
    let (vocab_json, merges_txt) = input;
    let Ok(dir) = tempfile::tempdir() else { return };
    let (vp, mp) = (dir.path().join("vocab.json"), dir.path().join("merges.txt"));
    if std::fs::write(&vp, vocab_json).is_err() || std::fs::write(&mp, merges_txt).is_err() {
        return;
    }
    let Ok(vocab) = Vocab::read_gpt2(&vp, &mp) else {
        return;
    };
    let (vp2, mp2) = (dir.path().join("v2.json"), dir.path().join("m2.txt"));
    vocab.write_gpt2(&vp2, &mp2).expect("writes");
    let back = Vocab::read_gpt2(&vp2, &mp2).expect("reads what it wrote");
    assert_eq!(back.tokens(), vocab.tokens());
    assert_eq!(
        back.merges().collect::<Vec<_>>(),
        vocab.merges().collect::<Vec<_>>()
    );
});
