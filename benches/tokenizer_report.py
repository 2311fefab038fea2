"""Renders a tokenizer benchmark's JSON as the Markdown tables of benches/RESULTS.md.

    python benches/tokenizer_report.py benches/results/tokenizer-<tag>.json

Every number comes from the JSON; nothing is typed in by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PATHO_CASES = ("spaces", "newlines", "one-letter", "digits", "cjk-no-spaces", "latin1-random")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _token_check(row: dict, enc: dict | None) -> str:
    """The file's token count against the in-memory one (bpelm adds one EOT id per separator)."""
    mem = next(
        (
            r
            for r in (enc or {}).get("rows", [])
            if r["dataset"] == "web" and r["contender"] == row["contender"] and "n_tokens" in r
        ),
        None,
    )
    if mem is None or "n_tokens" not in row:
        return "-"
    diff = row["n_tokens"] - mem["n_tokens"]
    if diff == 0:
        return "equal"
    return f"{diff:+d}" + (" (= separators)" if diff == mem["docs"] - 1 else "")


def render_markdown(res: dict[str, Any], json_name: str = "") -> str:
    m, a = res["machine"], res["args"]
    lines = [
        f"Command: `{res.get('command', '?')}`",
        "",
        f"Machine: {m['cpu_model']}, {m['cpus_allowed']} usable CPUs, Python {m['python']}; "
        f"bpelm checkout {m.get('git_commit') or 'unknown'}; "
        f"run {m['date_utc']} UTC; load average {m['loadavg_start'][0]:.1f} at start, "
        f"{m.get('loadavg_end', [float('nan')])[0]:.1f} at end (the machine is shared: rates "
        "below include that contention).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
        "",
    ]
    if json_name:
        lines += [f"Raw data: `benches/results/{json_name}`.", ""]
    enc = res.get("encode")
    if enc:
        ths = sorted({r["threads"] for r in enc["rows"]})
        lines += [
            f"### Encode, GPT-2 vocabulary, whole documents (best of {a['repeats']})",
            "",
            "MB/s of document text (1 MB = 10^6 UTF-8 bytes); `ids = tiktoken` says whether the "
            "whole output equals tiktoken's. Efficiency = rate(N) / (N x rate(1)). Each "
            "repeat is a fresh process, so word caches start cold; `warm` is a second pass over "
            "the same text in the same process (caches full), shown for contrast only. "
            "`MB per CPU-s` divides by the process's CPU time instead of wall time: on a shared "
            "machine it is closer to what one uncontended core does (1-thread rows only).",
            "",
        ]
        for ds in sorted({r["dataset"] for r in enc["rows"]}):
            lines += [f"**{ds}** ({res['sizes_mb'][ds]:.1f} MB):", ""]
            header = ["contender"] + [f"{t} thr MB/s" for t in ths]
            header += [
                f"eff. {ths[-1]} thr",
                "1 thr MB per CPU-s",
                "warm 1 thr MB/s",
                "ids = tiktoken",
                "API",
            ]
            rows = []
            for name in dict.fromkeys(r["contender"] for r in enc["rows"]):
                mine = {
                    r["threads"]: r
                    for r in enc["rows"]
                    if r["dataset"] == ds and r["contender"] == name
                }
                cells = [
                    f"{mine[t]['mb_per_s']:.1f}" if "mb_per_s" in mine.get(t, {}) else "failed"
                    for t in ths
                ]
                top = mine.get(ths[-1], {})
                eff = f"{top['scaling_eff']:.2f}" if "scaling_eff" in top else "-"
                eq = {r.get("ids_equal_tiktoken") for r in mine.values()}
                same = "yes" if eq == {True} else ("**no**" if False in eq else "?")
                one = mine.get(1, {})
                warm = f"{one['warm_mb_per_s']:.1f}" if "warm_mb_per_s" in one else "-"
                per_cpu = "-"
                if "times" in one:
                    best = max(
                        one["bytes"] / (t * u) / 1e6 for t, u in zip(one["times"], one["cpu_util"])
                    )
                    per_cpu = f"{best:.1f}"
                rows.append([name, *cells, eff, per_cpu, warm, same, top.get("api", "")])
            lines += _table(header, rows) + [""]
        for name, why in enc.get("skipped", {}).items():
            lines.append(f"- not run: **{name}**: {why}")
        lines.append("")
    pile = res.get("pile")
    if pile:
        lines += [f"### The Pile ({pile['pile_gb']:.0f} GB of text)", "", pile["note"] + ".", ""]
        rows = []
        for name, e in sorted(pile["per_contender"].items(), key=lambda kv: -kv[1]["mb_per_s"]):
            rows.append(
                [
                    name,
                    e.get("via", "in-memory documents"),
                    f"{e['mb_per_s']:.1f}",
                    f"{e['minutes_measured']:.0f}",
                    f"{e.get('mb_per_s_16_extrapolated', float('nan')):.0f}",
                    f"{e.get('minutes_16_extrapolated', float('nan')):.0f}",
                ]
            )
        header = [
            "contender",
            "API",
            f"MB/s, {pile['measured_threads']} thr (measured)",
            "minutes (measured)",
            "MB/s, 16 cores (extrapolated)",
            "minutes, 16 cores (extrapolated)",
        ]
        lines += _table(header, rows) + [""]
    fil = res.get("file")
    if fil:
        lines += ["### Whole-file encoding to .npy (uint16), web corpus", ""]
        in_mem = {
            (r["contender"], r["threads"]): r["mb_per_s"]
            for r in (enc or {}).get("rows", [])
            if r["dataset"] == "web" and "mb_per_s" in r
        }
        rows = [
            [
                r["contender"],
                str(r.get("threads", "-")),
                f"{r['mb_per_s']:.1f}" if "mb_per_s" in r else f"failed: {r.get('error')}",
                f"{in_mem[(r['contender'], r.get('threads'))]:.1f}"
                if (r["contender"], r.get("threads")) in in_mem
                else "-",
                f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-",
                _token_check(r, enc),
            ]
            for r in fil["rows"]
        ]
        header = [
            "contender",
            "threads",
            "file MB/s",
            "in-memory MB/s (above)",
            "peak RSS MB",
            "tokens vs in-memory",
        ]
        lines += _table(header, rows) + [""]
        rows = [
            [
                r["contender"],
                f"{r['file_mb']:.1f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r.get('peak_rss_anon_mb', float('nan')):.0f}",
                f"{r.get('peak_rss_file_mb', float('nan')):.0f}",
                f"{r.get('peak_rss_mb_after_load', float('nan')):.0f}",
                r.get("error", ""),
            ]
            for r in fil["rss"]
        ]
        header = [
            "contender",
            "file MB",
            "peak RSS MB (ru_maxrss)",
            "peak anonymous MB",
            "peak file-backed MB",
            "RSS after load MB",
            "error",
        ]
        lines += ["Peak RSS against file size:", ""] + _table(header, rows) + [""]
    pa = res.get("patho")
    if pa:
        names = list(dict.fromkeys(r["contender"] for r in pa["rows"]))
        lines += [
            f"### Pathological inputs ({pa['size_mb']} MB each, 1 thread, ms per MB, one cold "
            f"call per process, best of {pa.get('repeats', 1)}; timeout {pa['timeout_s']:g} s "
            "including load)",
            "",
            "`*` marks ids that differ from the reference (tiktoken's, or where tiktoken failed, "
            "the most common output).",
            "",
        ]
        rows = []
        for case in PATHO_CASES:
            row = [case]
            for n in names:
                r = next((x for x in pa["rows"] if x["case"] == case and x["contender"] == n), None)
                if r is None:
                    row.append("-")
                elif "ms_per_mb" in r:
                    mark = "" if r.get("ids_equal_reference", True) else " *"
                    row.append(f"{r['ms_per_mb']:.0f}{mark}")
                elif r.get("timed_out"):
                    row.append(f"> {pa['timeout_s']:g} s")
                else:
                    err = str(r.get("error", ""))
                    short = "stack overflow" if "StackOverflow" in err else err[-50:]
                    row.append("crashed: " + short.replace("|", "/"))
            rows.append(row)
        lines += _table(["input", *names], rows) + [""]
    tr = res.get("train")
    if tr:
        lines += [
            f"### Training on web_128M ({tr['path_mb']:.1f} MB), {tr['threads']} threads, "
            "`<|endoftext|>` special",
            "",
        ]
        rows = [
            [
                str(r["vocab_size"]),
                r["contender"],
                f"{r['seconds']:.1f}" if "seconds" in r else f"failed: {r.get('error')}",
                f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-",
                f"{r['peak_rss_anon_mb']:.0f}" if "peak_rss_anon_mb" in r else "-",
                str(r.get("n_merges", "-")),
            ]
            for r in tr["rows"]
        ]
        header = ["vocab", "contender", "seconds", "peak RSS MB", "peak anonymous MB", "merges"]
        lines += _table(header, rows) + [""]
        if tr["agreement"]:
            rows = [
                [
                    str(g["vocab_size"]),
                    f"{g['a']} vs {g['b']}",
                    str(g["common_prefix"]),
                    f"{g['set_overlap']} / {min(g['len_a'], g['len_b'])}",
                    " vs ".join(repr(tuple(x)) for x in g["first_difference"])
                    if g.get("first_difference")
                    else "-",
                ]
                for g in tr["agreement"]
            ]
            header = ["vocab", "merges", "common prefix", "set overlap", "first differing merge"]
            lines += _table(header, rows) + [""]
    return "\n".join(lines)


def main() -> int:
    path = Path(sys.argv[1])
    print(render_markdown(json.loads(path.read_text()), path.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
