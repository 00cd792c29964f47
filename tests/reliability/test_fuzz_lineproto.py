"""Bad input at the collector's edge: the InfluxDB line-protocol parser and the Telegraf mapping,
fuzzed with hypothesis.

Properties: any text either parses or fails with `bad_line_protocol` naming a line and a column
(nothing else escapes); written lines read back as they were; whatever parses reads back the same
after being written out again; the Telegraf topic of the decoder never raises and every sample it
yields satisfies the contract. A few thousand cases by default, more with EDGEWATCH_SOAK=1.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.decode import Ignored, Rejected
from collector.lineproto import Line, parse_lines
from tests.reliability.figures import Figures, scaled
from tests.reliability.fuzz_checks import DECODER, Tally, check_text
from tests.reliability.lineproto_text import line_text, writable

CASES = int(scaled(1_000, 10_000))
FUZZ_SETTINGS = settings(max_examples=CASES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Names built from the characters that matter to the protocol, plus anything at all.
SPECIAL = [",", "=", " ", "\\", '"', "#", "\t", "i", "u", "t", "é", "\x00", "\ufeff"]
names = st.one_of(
    st.text(st.sampled_from(["a", "b", "_", "1", *SPECIAL]), min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # InfluxDB integers are int64
    st.booleans(),
    st.text(st.sampled_from(["a", " ", ",", "=", '"', "\\", "é"]), max_size=8) | st.text(max_size=8),
)
lines = st.builds(
    Line,
    measurement=st.one_of(st.sampled_from(["cpu", "mem", "ping", "disk"]), names),
    tags=st.dictionaries(st.one_of(st.sampled_from(["host", "cpu"]), names), names, max_size=3),
    fields=st.dictionaries(st.one_of(st.sampled_from(["usage_idle", "used_percent", "average_response_ms"]), names),
                           field_values, min_size=1, max_size=4),
    timestamp=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63)),
).filter(writable)


@given(st.lists(lines, min_size=1, max_size=5), st.sampled_from(["\n", "\r\n"]), st.booleans())
@settings(FUZZ_SETTINGS, max_examples=CASES // 2)
def test_written_lines_read_back_as_they_were(written: list[Line], newline: str, comments: bool) -> None:
    texts = [line_text(line) for line in written]
    if comments:
        texts = ["# a comment", "", *texts, "   "]
    assert parse_lines(newline.join(texts)) == written


text_inputs = st.one_of(
    st.text(max_size=200),
    st.text(st.sampled_from(list("cpumemhost=,. \\\"#\n\r-+0123456789eEiutrfalsTRUEFALS_xé\x00")), max_size=120),
    st.lists(lines, min_size=1, max_size=3).flatmap(
        lambda ls: st.tuples(st.just("\n".join(line_text(x) for x in ls)), st.integers(0, 200), st.text(max_size=3))
    ).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:]),
)


def test_any_text_parses_or_fails_with_line_and_column(figures: Figures) -> None:
    tally = Tally()

    @FUZZ_SETTINGS
    @given(text_inputs)
    def check(text: str) -> None:
        check_text(text, tally)

    check()
    assert tally.total >= CASES
    figures.record(
        "bad input", "line protocol parser and Telegraf mapping, hypothesis",
        tried=f"{tally.total:,} generated texts", result="no crash; every rejection has a reason and a place",
        lost=0, **tally.as_dict(),
    )


def test_odd_numbers_in_integer_fields_are_refused_not_crashed() -> None:
    for raw in ["--5i", "-i", "²i", "+5i", "1_0i", "5.0i", "-5u", "٥i", "9" * 400 + "i"]:
        decoded = DECODER.decode("telegraf/gw-1", f"mem,host=gw-1 used_percent={raw} 1".encode(), 0.0)
        assert isinstance(decoded, Rejected | Ignored), (raw, decoded)
