//! Vocabularies and merges: building ranks, reading and writing GPT-2 style files.
//!
//! A `Vocab` holds the token bytes by id and the merges in rank order, and derives once the
//! lookups the encoder needs: bytes -> id and (left id, right id) -> (rank, merged id), the
//! latter in `pair_table`.
//!
//! GPT-2's files spell token bytes as text through its "bytes to unicode" table: printable
//! Latin-1 bytes stand for themselves and the other 68 bytes for the code points 256.. in order.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::{self, MapAccess, Visitor};
use serde::Deserializer as _;

use crate::error::{BpeError, Result};
use crate::TokenId;

mod pair_table;
pub mod ranks;

pub(crate) use pair_table::{BytePairs, MergeValues, PairTable, Values, NO_RANK, NO_VALUE};

/// Token bytes by id, merges by rank, and the lookups derived from them.
#[derive(Debug, Clone)]
pub struct Vocab {
    tokens: Vec<Vec<u8>>,
    /// `(left, right, merged)` ids, in rank order.
    merges: Vec<[TokenId; 3]>,
    byte_ids: [TokenId; 256],
    ids: FxHashMap<Vec<u8>, TokenId>,
    /// (left, right) -> rank and rank -> merged, built from `merges`.
    pairs: PairTable,
    /// Derived on first use by the encoder.
    merge_tables: OnceLock<MergeTables>,
}

/// Lookups for encoding, derived from the merges on first use.
#[derive(Debug, Clone)]
pub(crate) struct MergeTables {
    /// Every merge ranks after all merges that make its two parts, so merging a pair only
    /// ever creates pairs of higher rank (later in the merge list).
    pub(crate) monotone: bool,
    /// The merge of every pair of single bytes.
    pub(crate) byte_pairs: BytePairs,
}

impl MergeTables {
    /// The rank of merging the single bytes `first` then `second` (`NO_RANK`: none).
    #[inline(always)]
    pub(crate) fn byte_pair_rank(&self, first: u8, second: u8) -> u32 {
        self.byte_pairs.rank(first, second)
    }
}

impl Vocab {
    /// Builds a vocabulary from token bytes by id and merges in rank order. Empty bytes mark
    /// an unused id (tiktoken's vocabularies leave some between their special tokens); every
    /// single byte must be a token, token bytes must be distinct, and each merge's parts and
    /// their concatenation must be tokens.
    pub fn new(tokens: Vec<Vec<u8>>, merges: &[(Vec<u8>, Vec<u8>)]) -> Result<Self> {
        let ids = index_tokens(&tokens, |id, _| {
            BpeError::InvalidArgument(format!(
                "token id {id} repeats the bytes of an earlier token"
            ))
        })?;
        let byte_ids = byte_ids(&ids).map_err(BpeError::InvalidArgument)?;
        let mut vocab = Vocab {
            tokens,
            merges: Vec::with_capacity(merges.len()),
            byte_ids,
            ids,
            pairs: PairTable::new(&[], &byte_ids),
            merge_tables: OnceLock::new(),
        };
        let mut seen = FxHashSet::default();
        for (rank, (left, right)) in merges.iter().enumerate() {
            vocab
                .push_merge(&mut seen, left, right)
                .map_err(|message| BpeError::InvalidArgument(format!("merge {rank}: {message}")))?;
        }
        vocab.pairs = PairTable::new(&vocab.merges, &vocab.byte_ids);
        Ok(vocab)
    }

    /// Builds a vocabulary from an id -> bytes map. Ids may leave gaps (unused ids, as
    /// tiktoken's special-token ids do), up to as many as there are tokens plus
    /// `MAX_EXTRA_UNUSED_IDS`.
    pub fn from_id_map(
        entries: impl IntoIterator<Item = (TokenId, Vec<u8>)>,
        merges: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Self> {
        let entries: Vec<(TokenId, Vec<u8>)> = entries.into_iter().collect();
        let tokens = place_ids(entries).map_err(BpeError::InvalidArgument)?;
        Vocab::new(tokens, merges)
    }

    /// Appends the merge `left + right` as the next rank; the message says what is wrong.
    /// `seen` holds the `(left, right)` ids of the merges so far. `pairs` is left to build
    /// once all merges are in.
    fn push_merge(
        &mut self,
        seen: &mut FxHashSet<(TokenId, TokenId)>,
        left: &[u8],
        right: &[u8],
    ) -> std::result::Result<(), String> {
        let id_of = |part: &[u8]| {
            self.ids
                .get(part)
                .copied()
                .ok_or_else(|| format!("{} is not in the vocabulary", show_bytes(part)))
        };
        let l = id_of(left)?;
        let r = id_of(right)?;
        let joined = [left, right].concat();
        let m = id_of(&joined)?;
        if !seen.insert((l, r)) {
            return Err(format!(
                "the pair {} {} repeats an earlier merge",
                show_bytes(left),
                show_bytes(right)
            ));
        }
        self.merges.push([l, r, m]);
        Ok(())
    }

    /// Adds `bytes` as a new token (unless present) and returns its id.
    pub fn add_token(&mut self, bytes: &[u8]) -> TokenId {
        if let Some(&id) = self.ids.get(bytes) {
            return id;
        }
        let id = self.tokens.len() as TokenId;
        self.tokens.push(bytes.to_vec());
        self.ids.insert(bytes.to_vec(), id);
        id
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bytes of token `id`, if it exists (not for an unused id).
    pub fn token(&self, id: TokenId) -> Option<&[u8]> {
        self.tokens
            .get(id as usize)
            .map(Vec::as_slice)
            .filter(|t| !t.is_empty())
    }

    /// The tokens by id; an unused id's bytes are empty.
    pub fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }

    /// The id of the token with these bytes.
    #[inline]
    pub fn id(&self, bytes: &[u8]) -> Option<TokenId> {
        self.ids.get(bytes).copied()
    }

    #[inline]
    pub fn byte_id(&self, byte: u8) -> TokenId {
        self.byte_ids[byte as usize]
    }

    /// `(rank, merged id)` of the merge of `left` then `right`.
    #[inline]
    pub fn merge_of(&self, left: TokenId, right: TokenId) -> Option<(u32, TokenId)> {
        self.pairs.get(left, right)
    }

    /// The merge lookup the encoder uses.
    #[inline]
    pub(crate) fn pairs(&self) -> &PairTable {
        &self.pairs
    }

    /// `[left, right, merged]` ids of the merge of rank `rank`, which must exist.
    #[inline]
    pub(crate) fn merge_at(&self, rank: u32) -> [TokenId; 3] {
        self.merges[rank as usize]
    }

    /// The encoder's tables, built on the first call.
    pub(crate) fn merge_tables(&self) -> &MergeTables {
        self.merge_tables.get_or_init(|| {
            const NONE: u32 = NO_RANK;
            // made_by[t]: the latest rank of a merge producing token t.
            let mut made_by = vec![NONE; self.tokens.len()];
            for (rank, &[_, _, m]) in self.merges.iter().enumerate() {
                made_by[m as usize] = rank as u32;
            }
            let monotone = self.merges.iter().enumerate().all(|(rank, &[l, r, _])| {
                let before =
                    |t: TokenId| made_by[t as usize] == NONE || made_by[t as usize] < rank as u32;
                before(l) && before(r)
            });
            MergeTables {
                monotone,
                byte_pairs: self.pairs.byte_pairs(&self.byte_ids),
            }
        })
    }

    pub fn num_merges(&self) -> usize {
        self.merges.len()
    }

    /// The merges in rank order as `(left bytes, right bytes)`.
    pub fn merges(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.merges.iter().map(|&[l, r, _]| {
            (
                self.tokens[l as usize].as_slice(),
                self.tokens[r as usize].as_slice(),
            )
        })
    }

    /// Reads GPT-2's `vocab.json` and `merges.txt`.
    pub fn read_gpt2(vocab_path: &Path, merges_path: &Path) -> Result<Self> {
        Vocab::read_gpt2_with(vocab_path, merges_path, &[])
    }

    /// Reads GPT-2's `vocab.json` and `merges.txt`, whose `added` tokens (the special
    /// tokens) need no merge to make them; every other token of several bytes that looks
    /// merged must be made by a merge (`check_merged`).
    pub fn read_gpt2_with(vocab_path: &Path, merges_path: &Path, added: &[String]) -> Result<Self> {
        let tokens = read_vocab_json(vocab_path)?;
        let vocab_name = vocab_path.display().to_string();
        let ids = index_tokens(&tokens, |id, _| BpeError::BadFile {
            path: vocab_name.clone(),
            line: 1,
            column: None,
            message: format!("token id {id} repeats the bytes of an earlier token"),
        })?;
        let byte_ids = byte_ids(&ids).map_err(|message| BpeError::BadFile {
            path: vocab_name.clone(),
            line: 1,
            column: None,
            message,
        })?;
        let mut vocab = Vocab {
            tokens,
            merges: Vec::new(),
            byte_ids,
            ids,
            pairs: PairTable::new(&[], &byte_ids),
            merge_tables: OnceLock::new(),
        };
        let mut seen = FxHashSet::default();
        let text = read_text(merges_path)?;
        let decoder = ByteDecoder::new();
        let bad = |line: usize, message: String| BpeError::BadFile {
            path: merges_path.display().to_string(),
            line,
            column: None,
            message,
        };
        // The line of each merge, by rank, and the last line: for `check_merged`.
        let mut merge_lines = Vec::new();
        let mut last_line = 0;
        for (i, line) in text.lines().enumerate() {
            last_line = i + 1;
            let line_no = i + 1;
            if line.is_empty() || (i == 0 && line.starts_with("#version")) {
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            if parts.len() != 2 || parts[0].is_empty() || parts[1].is_empty() {
                return Err(bad(
                    line_no,
                    format!("expected two tokens separated by one space, found {line:?}"),
                ));
            }
            let left = decoder.decode(parts[0]).map_err(|m| bad(line_no, m))?;
            let right = decoder.decode(parts[1]).map_err(|m| bad(line_no, m))?;
            vocab
                .push_merge(&mut seen, &left, &right)
                .map_err(|m| bad(line_no, m))?;
            merge_lines.push(line_no);
        }
        vocab
            .check_merged(&vocab_name, added)
            .map_err(|(rank, message)| {
                bad(
                    merge_lines.get(rank).copied().unwrap_or(last_line + 1),
                    message,
                )
            })?;
        vocab.pairs = PairTable::new(&vocab.merges, &vocab.byte_ids);
        Ok(vocab)
    }

    /// Checks that the merges make every token that looks merged: a token of several bytes
    /// that splits into two tokens of the vocabulary (as the result of a merge does) but
    /// that no merge makes. A merges file cut short, or missing a line, leaves such tokens,
    /// which then never come out of encoding. (Tokens that split into no two tokens, such as
    /// GPT-2's `<|endoftext|>`, are added tokens and need no merge.)
    ///
    /// The error is the rank where the merge making the first such token belongs (the
    /// number of merges making lower ids: merges.txt lists them in id order) and a message.
    fn check_merged(
        &self,
        vocab_name: &str,
        added: &[String],
    ) -> std::result::Result<(), (usize, String)> {
        let mut made = vec![false; self.tokens.len()];
        for &[_, _, m] in &self.merges {
            made[m as usize] = true;
        }
        for id in added.iter().filter_map(|t| self.ids.get(t.as_bytes())) {
            made[*id as usize] = true;
        }
        let splits = |t: &[u8]| {
            (1..t.len()).any(|k| self.ids.contains_key(&t[..k]) && self.ids.contains_key(&t[k..]))
        };
        let missing = self
            .tokens
            .iter()
            .enumerate()
            .find(|&(id, t)| t.len() > 1 && !made[id] && splits(t));
        let Some((id, token)) = missing else {
            return Ok(());
        };
        let rank = self
            .merges
            .iter()
            .filter(|&&[_, _, m]| (m as usize) < id)
            .count();
        Err((
            rank,
            format!(
                "missing merge: no merge makes token {id} ({}) of {vocab_name}; the file has \
                 {} merges and looks truncated or edited",
                show_bytes(token),
                self.merges.len()
            ),
        ))
    }

    /// Writes GPT-2 style `vocab.json` (one entry a line, in id order) and `merges.txt`
    /// (a `#version` line, then one merge a line). Each file is written atomically.
    pub fn write_gpt2(&self, vocab_path: &Path, merges_path: &Path) -> Result<()> {
        let encoder = ByteEncoder::new();
        let mut json = String::with_capacity(self.tokens.len() * 16);
        json.push_str("{\n");
        let used = self
            .tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty());
        for (k, (id, bytes)) in used.enumerate() {
            let key = serde_json::to_string(&encoder.encode(bytes))
                .map_err(|e| BpeError::InvalidArgument(e.to_string()))?;
            let sep = if k == 0 { "" } else { ",\n" };
            json.push_str(&format!("{sep}  {key}: {id}"));
        }
        json.push_str("\n}\n");
        let mut merges = String::with_capacity(self.merges.len() * 12);
        merges.push_str("#version: 0.2\n");
        for (l, r) in self.merges() {
            merges.push_str(&encoder.encode(l));
            merges.push(' ');
            merges.push_str(&encoder.encode(r));
            merges.push('\n');
        }
        write_atomic(vocab_path, json.as_bytes())?;
        write_atomic(merges_path, merges.as_bytes())
    }
}

/// Maps token bytes to ids, calling `dup(id, bytes)` for the error on a repeat.
fn index_tokens(
    tokens: &[Vec<u8>],
    dup: impl Fn(usize, &[u8]) -> BpeError,
) -> Result<FxHashMap<Vec<u8>, TokenId>> {
    let mut ids = FxHashMap::with_capacity_and_hasher(tokens.len(), Default::default());
    if tokens.len() > u32::MAX as usize {
        return Err(BpeError::InvalidArgument("too many tokens".into()));
    }
    for (id, bytes) in tokens.iter().enumerate() {
        // Empty bytes: an unused id.
        if !bytes.is_empty() && ids.insert(bytes.clone(), id as TokenId).is_some() {
            return Err(dup(id, bytes));
        }
    }
    Ok(ids)
}

fn byte_ids(ids: &FxHashMap<Vec<u8>, TokenId>) -> std::result::Result<[TokenId; 256], String> {
    let mut out = [0; 256];
    for (b, slot) in out.iter_mut().enumerate() {
        *slot = *ids.get(&[b as u8][..]).ok_or_else(|| {
            format!("the single byte {b:#04x} is not a token; byte-level BPE needs all 256")
        })?;
    }
    Ok(out)
}

/// Unused ids a vocabulary may have beyond one per token: enough for any gaps between
/// special tokens, and a bound on what a claimed id can make this allocate.
pub const MAX_EXTRA_UNUSED_IDS: usize = 1 << 16;

/// Token bytes by id from `(id, bytes)` entries, with empty bytes at unused ids. Memory
/// follows the entries, never the ids they claim: the highest id may exceed the number of
/// entries by `MAX_EXTRA_UNUSED_IDS` at most.
fn place_ids(entries: Vec<(TokenId, Vec<u8>)>) -> std::result::Result<Vec<Vec<u8>>, String> {
    let limit = entries.len().saturating_add(MAX_EXTRA_UNUSED_IDS);
    let n = entries
        .iter()
        .map(|(id, _)| *id as usize + 1)
        .max()
        .unwrap_or(0);
    if n > limit {
        return Err(format!(
            "token id {} leaves more than {MAX_EXTRA_UNUSED_IDS} unused ids below it ({} \
             tokens in all)",
            n - 1,
            entries.len()
        ));
    }
    let mut tokens = vec![Vec::new(); n];
    for (id, bytes) in entries {
        if bytes.is_empty() {
            return Err(format!("token id {id} has no bytes"));
        }
        let slot = &mut tokens[id as usize];
        if !slot.is_empty() {
            return Err(format!("token id {id} appears twice"));
        }
        *slot = bytes;
    }
    Ok(tokens)
}

/// Bytes as a readable literal for error messages.
fn show_bytes(bytes: &[u8]) -> String {
    format!("b\"{}\"", bytes.escape_ascii())
}

/// The text of `path`; `NotUtf8` with the offset of the first bad byte.
fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| BpeError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| BpeError::NotUtf8 {
        path: path.display().to_string(),
        offset: e.utf8_error().valid_up_to() as u64,
    })
}

/// Reads `vocab.json`: a JSON object from GPT-2-spelled token to id.
fn read_vocab_json(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = read_text(path)?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let parsed = de
        .deserialize_map(VocabVisitor {
            decoder: ByteDecoder::new(),
        })
        .and_then(|slots| {
            de.end()?;
            Ok(slots)
        });
    let bad = |line: usize, column: Option<usize>, message: String| BpeError::BadFile {
        path: path.display().to_string(),
        line,
        column,
        message,
    };
    let slots = parsed.map_err(|e| {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        // serde_json's line and column (0: the error is not at a place, as at the end).
        let column = Some(e.column()).filter(|&c| c > 0);
        bad(e.line().max(1), column, message)
    })?;
    Ok(slots)
}

/// Collects a JSON object of token -> id, checking each entry as it comes (serde_json then
/// reports the line of the entry at fault), into slots by id.
///
/// Memory follows the entries, never the ids they claim: a one-line file naming id
/// 47644339 once asked for a 1 GB slot table (found by the `vocab_files` fuzz target).
/// Ids are placed once all are read, when the count of tokens bounds them.
struct VocabVisitor {
    decoder: ByteDecoder,
}

impl<'de> Visitor<'de> for VocabVisitor {
    type Value = Vec<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object mapping tokens to integer ids")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut seen = FxHashSet::default();
        while let Some(key) = map.next_key::<String>()? {
            // Checked before reading the id so that the error points at the key's line.
            let bytes = self.decoder.decode(&key).map_err(de::Error::custom)?;
            let id: u32 = map.next_value()?;
            if !seen.insert(id) {
                return Err(de::Error::custom(format!("token id {id} appears twice")));
            }
            entries.push((id, bytes));
        }
        place_ids(entries).map_err(de::Error::custom)
    }
}

/// GPT-2's printable stand-ins: the byte values that spell themselves.
fn is_self_spelled(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// Bytes -> GPT-2's text spelling.
struct ByteEncoder {
    chars: [char; 256],
}

impl ByteEncoder {
    fn new() -> Self {
        let mut chars = ['\0'; 256];
        let mut next = 256u32;
        for (b, c) in chars.iter_mut().enumerate() {
            let code = if is_self_spelled(b as u8) {
                b as u32
            } else {
                next += 1;
                next - 1
            };
            // Every code point here is below 0x144, so always a valid char.
            *c = char::from_u32(code).unwrap_or('\u{FFFD}');
        }
        ByteEncoder { chars }
    }

    fn encode(&self, bytes: &[u8]) -> String {
        bytes.iter().map(|&b| self.chars[b as usize]).collect()
    }
}

/// GPT-2's text spelling -> bytes.
struct ByteDecoder {
    /// Byte for each code point below 0x144, or `None`.
    bytes: Vec<Option<u8>>,
}

impl ByteDecoder {
    fn new() -> Self {
        let encoder = ByteEncoder::new();
        let mut bytes = vec![None; 0x144];
        for (b, &c) in encoder.chars.iter().enumerate() {
            bytes[c as usize] = Some(b as u8);
        }
        ByteDecoder { bytes }
    }

    fn decode(&self, text: &str) -> std::result::Result<Vec<u8>, String> {
        text.chars()
            .map(|c| {
                self.bytes
                    .get(c as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| {
                        format!(
                            "the token {text:?} holds {c:?}, which GPT-2's byte map does not use"
                        )
                    })
            })
            .collect()
    }
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so
/// readers never see a half-written file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = crate::tmpfile::builder()
        .tempfile_in(dir)
        .map_err(|e| BpeError::io(dir, e))?;
    tmp.write_all(data)
        .map_err(|e| BpeError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| BpeError::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| BpeError::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bytes_vocab() -> Vec<Vec<u8>> {
        (0..=255u8).map(|b| vec![b]).collect()
    }

    fn tmpdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn byte_map_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        let spelled = ByteEncoder::new().encode(&all);
        assert_eq!(spelled.chars().count(), 256);
        assert!(!spelled.contains(' '));
        assert_eq!(ByteDecoder::new().decode(&spelled).unwrap(), all);
        assert_eq!(ByteEncoder::new().encode(b" the\n"), "\u{120}the\u{10a}");
    }

    #[test]
    fn merges_get_ranks_and_merged_ids() {
        let mut tokens = bytes_vocab();
        tokens.push(b"ab".to_vec());
        tokens.push(b"abc".to_vec());
        let merges = vec![
            (b"a".to_vec(), b"b".to_vec()),
            (b"ab".to_vec(), b"c".to_vec()),
        ];
        let v = Vocab::new(tokens, &merges).unwrap();
        assert_eq!(v.merge_of(97, 98), Some((0, 256)));
        assert_eq!(v.merge_of(256, 99), Some((1, 257)));
        assert_eq!(v.merge_of(98, 97), None);
        assert_eq!(v.id(b"abc"), Some(257));
        assert_eq!(
            v.merges().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"b"[..]), (&b"ab"[..], &b"c"[..])]
        );
    }

    #[test]
    fn gpt2_merges_are_all_found() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gpt2");
        if !dir.join("vocab.json").exists() {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        }
        let v = Vocab::read_gpt2(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap();
        assert!(matches!(v.pairs().values(), Values::Narrow(_)));
        for rank in 0..v.num_merges() as u32 {
            let [l, r, m] = v.merge_at(rank);
            assert_eq!(v.merge_of(l, r), Some((rank, m)));
            // The reversed pair merges only where GPT-2 has that merge too.
            if let Some((back, _)) = v.merge_of(r, l) {
                assert_eq!(v.merge_at(back)[..2], [r, l]);
            }
        }
        let (the, he) = (v.id(b"the").unwrap(), v.id(b"he").unwrap());
        // Line 914 of merges.txt (which has no version line): "t he".
        assert_eq!(v.merge_of(v.byte_id(b't'), he), Some((913, the)));
        assert_eq!(v.merge_of(v.id(b"th").unwrap(), v.byte_id(b'e')), None);
        assert_eq!(v.merge_of(50_256, the), None);
        let (t, h) = (v.byte_id(b't'), v.byte_id(b'h'));
        assert_eq!(
            v.merge_tables().byte_pair_rank(b't', b'h'),
            v.merge_of(t, h).unwrap().0
        );
    }

    #[test]
    fn bad_vocabularies_are_refused() {
        let merges = vec![(b"a".to_vec(), b"b".to_vec())];
        let err = Vocab::new(bytes_vocab(), &merges).unwrap_err().to_string();
        assert!(err.contains("merge 0") && err.contains("ab"), "{err}");
        let mut dup = bytes_vocab();
        dup.push(b"a".to_vec());
        assert!(Vocab::new(dup, &[])
            .unwrap_err()
            .to_string()
            .contains("256"));
        let short: Vec<Vec<u8>> = (0..200u8).map(|b| vec![b]).collect();
        assert!(Vocab::new(short, &[]).is_err());
        let far = (0..=255u8).map(|b| (u32::from(b) + u32::from(b > 10) * (1 << 20), vec![b]));
        let err = Vocab::from_id_map(far, &[]).unwrap_err().to_string();
        assert!(err.contains("unused ids below it"), "{err}");
        let twice = (0..=256u32).map(|i| (i.min(255), vec![i as u8]));
        let err = Vocab::from_id_map(twice, &[]).unwrap_err().to_string();
        assert!(err.contains("token id 255 appears twice"), "{err}");
    }

    #[test]
    fn ids_may_leave_gaps_as_tiktokens_special_tokens_do() {
        // Bytes at 0..=10 and 12..=256: id 11 is unused.
        let gap = (0..=255u8).map(|b| (u32::from(b) + u32::from(b > 10), vec![b]));
        let v = Vocab::from_id_map(gap, &[]).unwrap();
        assert_eq!(v.len(), 257);
        assert_eq!(v.token(11), None);
        assert_eq!(v.token(12), Some(&[11u8][..]));
        assert_eq!(v.id(&[11]), Some(12));
        // The files keep the gap.
        let dir = tmpdir();
        let (vp, mp) = (dir.path().join("v.json"), dir.path().join("m.txt"));
        v.write_gpt2(&vp, &mp).unwrap();
        let back = Vocab::read_gpt2(&vp, &mp).unwrap();
        assert_eq!(back.tokens(), v.tokens());
    }

    #[test]
    fn gpt2_files_round_trip() {
        let mut tokens = bytes_vocab();
        tokens.push(b" t".to_vec());
        tokens.push(b" th".to_vec());
        tokens.push(b"<|endoftext|>".to_vec());
        let merges = vec![
            (b" ".to_vec(), b"t".to_vec()),
            (b" t".to_vec(), b"h".to_vec()),
        ];
        let v = Vocab::new(tokens, &merges).unwrap();
        let dir = tmpdir();
        let (vp, mp) = (dir.path().join("vocab.json"), dir.path().join("merges.txt"));
        v.write_gpt2(&vp, &mp).unwrap();
        let back = Vocab::read_gpt2(&vp, &mp).unwrap();
        assert_eq!(back.tokens(), v.tokens());
        assert_eq!(
            back.merges().collect::<Vec<_>>(),
            v.merges().collect::<Vec<_>>()
        );
        let merges_text = std::fs::read_to_string(&mp).unwrap();
        assert_eq!(merges_text, "#version: 0.2\n\u{120} t\n\u{120}t h\n");
    }

    fn write_pair(
        dir: &Path,
        vocab: &str,
        merges: &str,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let (vp, mp) = (dir.join("vocab.json"), dir.join("merges.txt"));
        std::fs::write(&vp, vocab).unwrap();
        std::fs::write(&mp, merges).unwrap();
        (vp, mp)
    }

    fn base_json(extra: &[&str]) -> String {
        let enc = ByteEncoder::new();
        let mut entries: Vec<String> = (0..=255u8)
            .map(|b| format!("{}: {b}", serde_json::to_string(&enc.encode(&[b])).unwrap()))
            .collect();
        entries.extend(extra.iter().map(|s| s.to_string()));
        format!("{{\n{}\n}}\n", entries.join(",\n"))
    }

    fn bad_file_line(err: BpeError) -> (usize, String) {
        match err {
            BpeError::BadFile { line, message, .. } => (line, message),
            other => panic!("expected BadFile, got {other}"),
        }
    }

    #[test]
    fn a_truncated_or_gapped_merges_file_names_the_missing_line() {
        let dir = tmpdir();
        let json = base_json(&["\"ab\": 256", "\"abc\": 257", "\"cd\": 258", "\"<s>\": 259"]);
        let full = "#version: 0.2\na b\nab c\nc d\n";
        let (vp, mp) = write_pair(dir.path(), &json, full);
        assert_eq!(Vocab::read_gpt2(&vp, &mp).unwrap().num_merges(), 3);
        // Cut after line 3: the merge of line 4, which makes "cd", is missing.
        let (vp, mp) = write_pair(dir.path(), &json, "#version: 0.2\na b\nab c\n");
        let (line, msg) = bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err());
        assert_eq!(line, 4, "{msg}");
        assert!(msg.contains("token 258") && msg.contains("cd"), "{msg}");
        // Line 3 dropped: "abc" (id 257) is missing; its merge belongs before line 3.
        let (vp, mp) = write_pair(dir.path(), &json, "#version: 0.2\na b\nc d\n");
        let (line, msg) = bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err());
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("token 257"), "{msg}");
        // A token made of two tokens but named as added (a special token) needs no merge.
        let json = base_json(&["\"ab\": 256", "\"cd\": 257"]);
        let (vp, mp) = write_pair(dir.path(), &json, "#version: 0.2\na b\n");
        assert!(Vocab::read_gpt2(&vp, &mp).is_err());
        assert!(Vocab::read_gpt2_with(&vp, &mp, &["cd".to_string()]).is_ok());
    }

    #[test]
    fn vocab_files_a_huge_claimed_id_allocates_nothing_for_it() {
        // Found by the `vocab_files` fuzz target: this asked for a 1.1 GB slot table.
        let dir = tmpdir();
        let (vp, mp) = write_pair(dir.path(), "{\"a\": 47644339, \"b\": 0}", "");
        let err = Vocab::read_gpt2(&vp, &mp).unwrap_err().to_string();
        assert!(
            err.contains("token id 47644339 leaves more than 65536 unused ids"),
            "{err}"
        );
        let (vp, mp) = write_pair(dir.path(), "{\"a\": 4294967295}", "");
        assert!(Vocab::read_gpt2(&vp, &mp).is_err());
    }

    #[test]
    fn json_errors_give_the_column_and_bad_utf8_the_offset() {
        let dir = tmpdir();
        // All on one line, as GPT-2's encoder.json is.
        let one_line = base_json(&["\"ab\" 256"]).replace('\n', "");
        let (vp, mp) = write_pair(dir.path(), &one_line, "");
        let err = Vocab::read_gpt2(&vp, &mp).unwrap_err().to_string();
        let at = one_line.find("\"ab\" 256").unwrap() + 6;
        assert!(err.contains(&format!("vocab.json:1:{at}: ")), "{err}");
        // Not UTF-8 at byte 8.
        std::fs::write(&vp, b"{\"a\": 0,\xff}").unwrap();
        let err = Vocab::read_gpt2(&vp, &mp).unwrap_err();
        assert!(matches!(err, BpeError::NotUtf8 { offset: 8, .. }), "{err}");
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = tmpdir();
        // Merge line 3 has three parts.
        let (vp, mp) = write_pair(
            dir.path(),
            &base_json(&["\"ab\": 256"]),
            "#version: 0.2\na b\na b c\n",
        );
        let (line, msg) = bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err());
        assert_eq!(line, 3, "{msg}");
        // Merge line 2 joins to a token missing from the vocabulary.
        let (vp, mp) = write_pair(dir.path(), &base_json(&[]), "#version: 0.2\nx y\n");
        let (line, msg) = bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err());
        assert_eq!(line, 2);
        assert!(msg.contains("xy"), "{msg}");
        // A merge naming a character outside the byte map.
        let (vp, mp) = write_pair(dir.path(), &base_json(&[]), "a \u{4e2d}\n");
        assert_eq!(bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err()).0, 1);
        // Bad JSON on line 258 (after the 256 byte entries on lines 2..=257).
        let (vp, mp) = write_pair(dir.path(), &base_json(&["\"ab\" 256"]), "");
        assert_eq!(
            bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err()).0,
            258
        );
        // A vocabulary token outside the byte map, on line 258.
        let (vp, mp) = write_pair(dir.path(), &base_json(&["\"a b\": 256"]), "");
        let (line, msg) = bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err());
        assert_eq!(line, 258, "{msg}");
        // A repeated id.
        let (vp, mp) = write_pair(dir.path(), &base_json(&["\"ab\": 5"]), "");
        assert!(bad_file_line(Vocab::read_gpt2(&vp, &mp).unwrap_err())
            .1
            .contains("id 5"));
        // A missing file is an Io error naming it.
        let missing = dir.path().join("nope.json");
        let err = Vocab::read_gpt2(&missing, &mp).unwrap_err();
        assert!(matches!(err, BpeError::Io { .. }) && err.to_string().contains("nope.json"));
    }
}
