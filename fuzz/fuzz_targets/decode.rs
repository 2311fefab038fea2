//! Decoding any ids: the concatenated token bytes, or UnknownId naming the first bad id.
#![no_main]

#[path = "common.rs"]
mod common;

use _core::BpeError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ids: Vec<u32>| {
    let encoder = common::encoder();
    let n = encoder.vocab().len();
    match encoder.decode_bytes(&ids) {
        Ok(bytes) => {
            assert!(ids.iter().all(|&id| (id as usize) < n));
            let want: Vec<u8> = ids
                .iter()
                .flat_map(|&id| encoder.vocab().token(id).unwrap_or_default().to_vec())
                .collect();
            assert_eq!(bytes, want);
        }
        Err(BpeError::UnknownId { id, .. }) => {
            assert_eq!(
                ids.iter()
                    .find(|&&i| i as usize >= n)
                    .map(|&i| u64::from(i)),
                Some(id)
            );
        }
        Err(e) => panic!("unexpected error {e}"),
    }
});
