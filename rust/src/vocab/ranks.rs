//! Merges from tiktoken ranks. A rank is a token's id and also its merge order: tiktoken's
//! BPE repeatedly merges the adjacent pair whose concatenation has the lowest rank. So the
//! merge that makes a token is found by running that BPE on the token's own bytes with only
//! lower ranks allowed: it ends in exactly two parts, the merge's left and right. Listing
//! those in rank order gives the (rank-ordered) merges that `Vocab` takes, with tiktoken's
//! ids.

use base64::Engine;
use rustc_hash::FxHashMap;

use crate::error::{BpeError, Result};

/// A token's bytes and its rank.
pub type Ranked = (Vec<u8>, u32);

/// A malformed line of a rank file: its number (from 1) and what is wrong with it.
pub type BadLine = (usize, String);

/// The `(token, rank)` lines of a `.tiktoken` file's text (`BASE64 RANK`, blank lines
/// skipped), in file order.
pub fn parse_ranks(data: &[u8]) -> std::result::Result<Vec<Ranked>, BadLine> {
    let mut out = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (token, rank) = match (fields.next(), fields.next(), fields.next()) {
            (None, _, _) => continue,
            (Some(token), Some(rank), None) => (token, rank),
            _ => return Err((i + 1, "not two fields".into())),
        };
        let token = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|e| (i + 1, format!("bad base64: {e}")))?;
        let rank = std::str::from_utf8(rank)
            .ok()
            .and_then(|r| r.parse::<u32>().ok())
            .ok_or_else(|| {
                (
                    i + 1,
                    format!("bad rank {:?}", String::from_utf8_lossy(rank)),
                )
            })?;
        out.push((token, rank));
    }
    Ok(out)
}

/// The parts tiktoken's byte-pair merge leaves of `token` when only pairs whose
/// concatenation ranks below `max_rank` merge, as lengths in order.
fn merge_parts(ranks: &FxHashMap<&[u8], u32>, token: &[u8], max_rank: u32) -> Vec<usize> {
    let mut lens = vec![1usize; token.len()];
    // The start of each part, kept beside `lens`.
    let mut starts: Vec<usize> = (0..token.len()).collect();
    while lens.len() > 1 {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..lens.len() - 1 {
            let pair = &token[starts[i]..starts[i + 1] + lens[i + 1]];
            if let Some(&rank) = ranks.get(pair) {
                if rank < max_rank && best.is_none_or(|(_, r)| rank < r) {
                    best = Some((i, rank));
                }
            }
        }
        let Some((i, _)) = best else { break };
        lens[i] += lens[i + 1];
        lens.remove(i + 1);
        starts.remove(i + 1);
    }
    lens
}

/// The merges, in rank order, that make every token of several bytes of `ranks` (token,
/// rank). With `strict`, an error when a single byte is missing (byte-level BPE needs all
/// 256) or a token is not the merge of two lower-ranked ones (tiktoken could never produce
/// it); without, such tokens are left out.
pub fn merges_from_ranks(
    ranks: &[(Vec<u8>, u32)],
    strict: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let by_bytes: FxHashMap<&[u8], u32> = ranks.iter().map(|(t, r)| (t.as_slice(), *r)).collect();
    if strict {
        let missing: Vec<u8> = (0..=255u8)
            .filter(|b| !by_bytes.contains_key(&[*b][..]))
            .collect();
        if let Some(first) = missing.first() {
            return Err(BpeError::InvalidArgument(format!(
                "the ranks lack {} single bytes (first: {first})",
                missing.len()
            )));
        }
    }
    let mut ordered: Vec<&(Vec<u8>, u32)> = ranks.iter().filter(|(t, _)| t.len() > 1).collect();
    ordered.sort_by_key(|(_, r)| *r);
    let mut merges = Vec::with_capacity(ordered.len());
    for (token, rank) in ordered {
        let parts = merge_parts(&by_bytes, token, *rank);
        if let [left, _] = parts[..] {
            merges.push((token[..left].to_vec(), token[left..].to_vec()));
        } else if strict {
            return Err(BpeError::InvalidArgument(format!(
                "token b\"{}\" (rank {rank}) is not a merge of two lower ranks",
                token.escape_ascii()
            )));
        }
    }
    Ok(merges)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ranks_of(extra: &[&str]) -> Vec<(Vec<u8>, u32)> {
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], u32::from(b))).collect();
        for (i, t) in extra.iter().enumerate() {
            ranks.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        ranks
    }

    #[test]
    fn each_token_splits_into_the_two_parts_it_was_merged_from() {
        let ranks = ranks_of(&["ab", "cd", "abcd", "abc"]);
        let merges = merges_from_ranks(&ranks, true).unwrap();
        let as_str: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| {
                (
                    std::str::from_utf8(l).unwrap(),
                    std::str::from_utf8(r).unwrap(),
                )
            })
            .collect();
        assert_eq!(as_str, [("a", "b"), ("c", "d"), ("ab", "cd"), ("ab", "c")]);
    }

    #[test]
    fn rank_lines_parse_and_bad_ones_are_named() {
        let parsed = parse_ranks(b"IQ== 0\n\nYWI= 1\r\n").unwrap();
        assert_eq!(parsed, [(b"!".to_vec(), 0), (b"ab".to_vec(), 1)]);
        assert_eq!(parse_ranks(b"IQ== 0\nnot-base64!! 1\n").unwrap_err().0, 2);
        assert_eq!(parse_ranks(b"IQ== x\n").unwrap_err().0, 1);
        assert_eq!(parse_ranks(b"IQ== 0 7\n").unwrap_err().0, 1);
        assert_eq!(parse_ranks(b"IQ==\n").unwrap_err().0, 1);
    }

    #[test]
    fn strict_refuses_what_tiktoken_could_not_make() {
        // "abc" with neither "ab" nor "bc" ranked lower cannot be made by merges.
        let ranks = ranks_of(&["abc"]);
        let err = merges_from_ranks(&ranks, true).unwrap_err().to_string();
        assert!(err.contains("not a merge of two lower ranks"), "{err}");
        assert!(merges_from_ranks(&ranks, false).unwrap().is_empty());
        let mut short = ranks_of(&[]);
        short.retain(|(t, _)| t[0] != 7);
        let err = merges_from_ranks(&short, true).unwrap_err().to_string();
        assert!(err.contains("lack 1 single bytes (first: 7)"), "{err}");
    }
}
