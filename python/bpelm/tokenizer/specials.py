"""Which special tokens a piece of text may turn into: tiktoken's `allowed_special` /
`disallowed_special` policy.

Special tokens are a security boundary: text from users that spells "<|endoftext|>" must
not become the real end-of-text id (a cut document, an injected prompt). So, as in
tiktoken, by default no special token is encoded as one, and text that spells any of them
raises `ValueError` naming the token; `allowed_special` opts tokens in ("all" for every
one), and `disallowed_special=()` encodes the others as ordinary text without the check.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Collection, Sequence
from typing import Literal

# The two parameters' types, as tiktoken spells them.
AllowedSpecial = Literal["all"] | Collection[str]
DisallowedSpecial = Literal["all"] | Collection[str]


def resolve(
    specials: list[str], allowed_special: AllowedSpecial, disallowed_special: DisallowedSpecial
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """`(allowed, disallowed)`: the indices into `specials` of the tokens to encode as
    special tokens, and the tokens whose presence in the text is an error."""
    if allowed_special == "all":
        allowed = tuple(range(len(specials)))
    else:
        if isinstance(allowed_special, str):
            raise TypeError('allowed_special must be "all" or a collection of str, not a str')
        wanted = set(allowed_special)
        allowed = tuple(i for i, s in enumerate(specials) if s in wanted)
    if disallowed_special == "all":
        allowed_set = {specials[i] for i in allowed}
        disallowed = tuple(s for s in specials if s not in allowed_set)
    else:
        if isinstance(disallowed_special, str):
            raise TypeError('disallowed_special must be "all" or a collection of str, not a str')
        disallowed = tuple(disallowed_special)
    return allowed, disallowed


def first_disallowed(text: str, disallowed: tuple[str, ...]) -> tuple[int, str] | None:
    """`(character offset, token)` of the first occurrence in `text` of a disallowed token
    (the longest at that offset), or None.

    Searched with `str.find`, which reads CPython's own storage of `text` at memchr-like
    speed: the Rust core's special-token matcher would need the text as UTF-8 first, a copy
    of every non-ASCII text, and the usual case is one or two tokens and no match at all.
    """
    found: tuple[int, str] | None = None
    for token in disallowed:
        at = text.find(token)
        if at < 0:
            continue
        if found is None or at < found[0] or (at == found[0] and len(token) > len(found[1])):
            found = (at, token)
    return found


@functools.lru_cache(maxsize=64)
def screen(disallowed: tuple[str, ...]) -> tuple[str, ...]:
    """Strings that every text holding a disallowed token also holds: the tokens' distinct
    first two characters. Special tokens share theirs (`<|`: GPT-2's, cl100k's five and
    o200k's), so one scan of a text clears it of all of them, where one scan per token cost
    cl100k's `encode` a sixth of its time on documents of a few KB."""
    return tuple(dict.fromkeys(token[:2] for token in disallowed))


# Below this many characters a scan per token costs less than finding the screen.
SCREEN_CHARS = 1024
# A two-character needle is scanned for about three times slower than a long token (str's
# search skips ahead by the needle's length: 3.8 ms against 1.2 ms on 4 MB of web text), so
# the screen pays from four tokens on.
SCREEN_TOKENS = 4


def probes(text: str, disallowed: tuple[str, ...]) -> tuple[str, ...]:
    """What to look for in `text` to clear it of the `disallowed` tokens: the tokens
    themselves, or in a long text checked for many of them, their `screen`."""
    if len(disallowed) < SCREEN_TOKENS or len(text) < SCREEN_CHARS:
        return disallowed
    return screen(disallowed)


def first_text_with(texts: Sequence[str], disallowed: tuple[str, ...]) -> int | None:
    """The index of the first text holding a disallowed token, or None. The scan runs in
    C (`map` of `operator.contains`): a Python loop would cost a third of encoding a
    batch of short texts. Checked for many tokens, texts are screened first (`screen`)."""
    if not disallowed:
        return None
    if len(disallowed) < SCREEN_TOKENS:
        return first_text_with_any(texts, disallowed)
    candidates = first_text_with_any(texts, screen(disallowed))
    if candidates is None:
        return None
    first = first_text_with_any(texts[candidates:], disallowed)
    return None if first is None else candidates + first


def first_text_with_any(texts: Sequence[str], needles: tuple[str, ...]) -> int | None:
    """The index of the first text holding one of `needles`, or None."""
    first = None
    for needle in needles:
        hits = map(operator.contains, texts, itertools.repeat(needle))
        i = next(itertools.compress(itertools.count(), hits), None)
        if i is not None and (first is None or i < first):
            first = i
            texts = texts[:i]  # only an earlier text can matter for the next needle
    return first


def raise_disallowed(text: str, disallowed: tuple[str, ...], offset_base: int = 0) -> None:
    """Raises tiktoken's `ValueError` (with the offset added) when `text` spells one of the
    `disallowed` tokens; `offset_base` is the offset of `text` in a longer stream."""
    for probe in probes(text, disallowed):
        if probe in text:
            break
    else:
        return  # the usual case
    hit = first_disallowed(text, disallowed)
    if hit is None:
        return
    at, token = hit
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r} "
        f"(at character {offset_base + at}).\n"
        "If you want this text to be encoded as a special token, pass it to "
        f"`allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        "If you want this text to be encoded as normal text, disable the check for this "
        f"token by passing `disallowed_special=(tok.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def check_special_tokens(special_tokens: Sequence[str] | None) -> list[str]:
    """`special_tokens` as a list, checked: a list of str (a lone string would otherwise be
    taken as one special token per character)."""
    if special_tokens is None:
        return []
    if isinstance(special_tokens, (str, bytes)):
        raise TypeError("special_tokens must be a list of str, not a single string")
    specials = list(special_tokens)
    for s in specials:
        if not isinstance(s, str):
            raise TypeError(f"special tokens must be str, not {type(s).__name__}: {s!r}")
    return specials
