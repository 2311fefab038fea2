//! `EncodeFront`: the base class of `bpelm.Tokenizer`, holding the calls users make most
//! (`encode`, `encode_to_array`, `encode_ordinary`), so that one goes from Python straight
//! into Rust.
//!
//! Written in Python, these methods were about 0.35 us of a 0.85 us call on a sentence (a
//! frame, keyword arguments, the policy's lookup, the special-token check, the call into
//! the core). What tiktoken's special-token policy means stays in Python
//! (`Tokenizer._policy`, `specials.resolve`, the error message): this class only finds the
//! policy of a call (the defaults kept here, other arguments in the tokenizer's dict of
//! policies) and checks the text for the disallowed tokens.

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyList, PyString, PyTuple};

use super::encode::PyCoreTokenizer;
use crate::TokenId;

/// What an encode call with one pair of `allowed_special` / `disallowed_special` uses: the
/// core that matches the allowed special tokens, and the tokens text may not spell.
struct Policy {
    core: Py<PyCoreTokenizer>,
    disallowed: Py<PyTuple>,
}

impl Policy {
    /// From `Tokenizer._policy`'s `(core, disallowed)`.
    fn of(value: &Bound<'_, PyAny>) -> PyResult<Policy> {
        let (core, disallowed): (Bound<'_, PyCoreTokenizer>, Bound<'_, PyTuple>) =
            value.extract()?;
        Ok(Policy {
            core: core.unbind(),
            disallowed: disallowed.unbind(),
        })
    }
}

/// What the check calls of `bpelm.tokenizer.specials`, looked up on first use.
struct Specials {
    /// Below this many characters, each disallowed token is looked for in turn.
    screen_chars: usize,
    /// `raise_disallowed(text, disallowed)`: tiktoken's `ValueError`, naming the token.
    raise_disallowed: Py<PyAny>,
}

fn specials(py: Python<'_>) -> PyResult<&Specials> {
    static SPECIALS: PyOnceLock<Specials> = PyOnceLock::new();
    SPECIALS.get_or_try_init(py, || {
        let module = py.import("bpelm.tokenizer.specials")?;
        Ok(Specials {
            screen_chars: module.getattr("SCREEN_CHARS")?.extract()?,
            raise_disallowed: module.getattr("raise_disallowed")?.unbind(),
        })
    })
}

/// Raises tiktoken's `ValueError` when `text` spells one of `disallowed`. A short text is
/// searched for each token (`str.__contains__`, as the Python check did); a long one goes
/// to `raise_disallowed`, which first screens it for the tokens' shared prefixes.
fn check(text: &Bound<'_, PyString>, disallowed: &Bound<'_, PyTuple>) -> PyResult<()> {
    if disallowed.is_empty() {
        return Ok(());
    }
    let specials = specials(text.py())?;
    if text.len()? < specials.screen_chars {
        let mut found = false;
        for token in disallowed.iter() {
            if text.contains(token)? {
                found = true;
                break;
            }
        }
        if !found {
            return Ok(());
        }
    }
    specials
        .raise_disallowed
        .bind(text.py())
        .call1((text, disallowed))?;
    Ok(())
}

/// `text` as a `str`, or the `TypeError` naming the method and what came instead.
fn text_arg<'a, 'py>(
    text: &'a Bound<'py, PyAny>,
    method: &str,
) -> PyResult<&'a Bound<'py, PyString>> {
    text.cast::<PyString>().map_err(|_| {
        let name = super::objects::type_name(text);
        PyTypeError::new_err(format!("{method} takes a str, not {name}"))
    })
}

/// The base class of `bpelm.Tokenizer`: its encode calls (see the module's comment). The
/// subclass provides `_core`, `_default_policy` and `_policy`.
#[pyclass(subclass, frozen, name = "EncodeFront", module = "bpelm._core")]
pub struct EncodeFront {
    /// `(allowed_special, disallowed_special)` -> `(core, disallowed)`, filled by
    /// `Tokenizer._policy` for arguments that can be dict keys.
    policies: Py<PyDict>,
    /// The policy of tiktoken's defaults, and of `encode_ordinary`.
    default: PyOnceLock<Policy>,
    ordinary: PyOnceLock<Policy>,
    /// The policies of the first few pairs of immutable arguments met, found by identity:
    /// a caller passes the same objects each time (`"all"`, `()`), and the dict's lookup
    /// (a key tuple made, hashed and compared) was a sixth of a short call.
    by_identity: [PyOnceLock<KeptPolicy>; IDENTITY_SLOTS],
}

// As for `PyCoreTokenizer`: CPython aligns the object holding this to 16 bytes only.
const _: () = assert!(std::mem::align_of::<EncodeFront>() <= 16);

/// How many argument pairs `EncodeFront` keeps by identity.
const IDENTITY_SLOTS: usize = 4;

/// A policy with the arguments it was found for (held, so their addresses stay theirs).
struct KeptPolicy {
    allowed: Py<PyAny>,
    disallowed: Py<PyAny>,
    policy: Policy,
}

/// Whether `arg` can never change value: a `str`, or a tuple or frozenset of them (a list
/// or set can change between two calls that pass the same object).
fn immutable(arg: &Bound<'_, PyAny>) -> bool {
    let is_str = |item: Bound<'_, PyAny>| item.is_exact_instance_of::<PyString>();
    if arg.is_exact_instance_of::<PyString>() {
        true
    } else if let Ok(tuple) = arg.cast_exact::<PyTuple>() {
        tuple.iter().all(is_str)
    } else if let Ok(set) = arg.cast_exact::<PyFrozenSet>() {
        set.iter().all(is_str)
    } else {
        false
    }
}

impl EncodeFront {
    /// The policy of a call; `None` stands for an argument left at its default.
    fn policy<'a>(
        slf: &'a Bound<'_, Self>,
        allowed: Option<&Bound<'_, PyAny>>,
        disallowed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PolicyRef<'a>> {
        let py = slf.py();
        let front = slf.get();
        if allowed.is_none() && disallowed.is_none() {
            let policy = front
                .default
                .get_or_try_init(py, || Policy::of(&slf.getattr("_default_policy")?))?;
            return Ok(PolicyRef::Kept(policy));
        }
        let empty = PyTuple::empty(py);
        let all = pyo3::intern!(py, "all");
        let allowed = allowed.unwrap_or(empty.as_any());
        let disallowed = disallowed.unwrap_or(all.as_any());
        let mut free = None;
        for slot in &front.by_identity {
            match slot.get(py) {
                Some(kept) if kept.allowed.is(allowed) && kept.disallowed.is(disallowed) => {
                    return Ok(PolicyRef::Kept(&kept.policy));
                }
                Some(_) => {}
                None => {
                    free = Some(slot);
                    break;
                }
            }
        }
        if let Some(slot) = free.filter(|_| immutable(allowed) && immutable(disallowed)) {
            let kept = slot.get_or_try_init(py, || {
                Ok::<_, PyErr>(KeptPolicy {
                    allowed: allowed.clone().unbind(),
                    disallowed: disallowed.clone().unbind(),
                    policy: Self::look_up(slf, allowed, disallowed)?,
                })
            })?;
            // Another thread may have filled the slot first, for other arguments.
            if kept.allowed.is(allowed) && kept.disallowed.is(disallowed) {
                return Ok(PolicyRef::Kept(&kept.policy));
            }
        }
        Ok(PolicyRef::Owned(Self::look_up(slf, allowed, disallowed)?))
    }

    /// The policy of `(allowed, disallowed)` from the tokenizer's dict, or from
    /// `Tokenizer._policy` (which fills the dict) when it is not there.
    fn look_up(
        slf: &Bound<'_, Self>,
        allowed: &Bound<'_, PyAny>,
        disallowed: &Bound<'_, PyAny>,
    ) -> PyResult<Policy> {
        let py = slf.py();
        let key = PyTuple::new(py, [allowed, disallowed])?;
        // An argument that cannot be a key (a set) is resolved every call, as in Python.
        if let Ok(Some(value)) = slf.get().policies.bind(py).get_item(&key) {
            return Policy::of(&value);
        }
        Policy::of(&slf.call_method1("_policy", (allowed, disallowed))?)
    }

    /// `encode` (the core's, with `text`) under the call's policy, once `text` is checked
    /// for the disallowed tokens.
    fn encode_with<'py, R>(
        slf: &Bound<'py, Self>,
        method: &str,
        text: &Bound<'py, PyAny>,
        allowed: Option<&Bound<'py, PyAny>>,
        disallowed: Option<&Bound<'py, PyAny>>,
        encode: impl FnOnce(&PyCoreTokenizer, &Bound<'py, PyString>) -> PyResult<R>,
    ) -> PyResult<R> {
        let text = text_arg(text, method)?;
        let policy = Self::policy(slf, allowed, disallowed)?;
        let policy = policy.get();
        check(text, policy.disallowed.bind(slf.py()))?;
        encode(policy.core.get(), text)
    }
}

/// A policy kept in the front, or one just looked up.
enum PolicyRef<'a> {
    Kept(&'a Policy),
    Owned(Policy),
}

impl PolicyRef<'_> {
    fn get(&self) -> &Policy {
        match self {
            PolicyRef::Kept(p) => p,
            PolicyRef::Owned(p) => p,
        }
    }
}

#[pymethods]
impl EncodeFront {
    /// Any arguments are the subclass's (its `__init__` takes them).
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        py: Python<'_>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> Self {
        EncodeFront {
            policies: PyDict::new(py).unbind(),
            default: PyOnceLock::new(),
            ordinary: PyOnceLock::new(),
            by_identity: std::array::from_fn(|_| PyOnceLock::new()),
        }
    }

    /// The policies kept for `encode`'s arguments (`Tokenizer._policy` fills it).
    #[getter]
    fn _policies<'py>(&self, py: Python<'py>) -> Bound<'py, PyDict> {
        self.policies.bind(py).clone()
    }

    /// The token ids of `text`.
    ///
    /// As in tiktoken: text spelling a special token raises `ValueError` (naming it and
    /// its offset) unless `allowed_special` holds it (`"all"`: every one), when it becomes
    /// its id, or `disallowed_special` leaves it out, when it is ordinary text.
    #[pyo3(
        signature = (text, *, allowed_special=None, disallowed_special=None),
        text_signature = "(self, text, *, allowed_special=(), disallowed_special='all')"
    )]
    fn encode<'py>(
        slf: &Bound<'py, Self>,
        text: &Bound<'py, PyAny>,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (allowed, disallowed) = (allowed_special, disallowed_special);
        Self::encode_with(slf, "encode", text, allowed, disallowed, |core, text| {
            core.encode(slf.py(), text)
        })
    }

    /// The token ids of `text` as a uint32 array (no Python ints created); special tokens
    /// as in `encode`.
    #[pyo3(
        signature = (text, *, allowed_special=None, disallowed_special=None),
        text_signature = "(self, text, *, allowed_special=(), disallowed_special='all')"
    )]
    fn encode_to_array<'py>(
        slf: &Bound<'py, Self>,
        text: &Bound<'py, PyAny>,
        allowed_special: Option<&Bound<'py, PyAny>>,
        disallowed_special: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<TokenId>>> {
        let (allowed, disallowed) = (allowed_special, disallowed_special);
        Self::encode_with(
            slf,
            "encode_to_array",
            text,
            allowed,
            disallowed,
            |core, text| core.encode_to_array(slf.py(), text),
        )
    }

    /// The token ids of `text` with special tokens encoded as ordinary text (tiktoken's
    /// name; `encode(text, disallowed_special=())`).
    fn encode_ordinary<'py>(
        slf: &Bound<'py, Self>,
        text: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let text = text_arg(text, "encode_ordinary")?;
        let policy = slf.get().ordinary.get_or_try_init(py, || {
            let none = PyTuple::empty(py);
            Policy::of(&slf.call_method1("_policy", (&none, &none))?)
        })?;
        policy.core.get().encode(py, text)
    }
}
