"""Line protocol parsing and the Telegraf mapping (pure, no I/O)."""

from __future__ import annotations

import pytest

from collector.errors import DecodeError
from collector.lineproto import Line, parse_lines
from collector.telegraf import samples_from_lines, to_micros


def test_basic_line_with_all_field_types() -> None:
    [line] = parse_lines('m,t=a f=1.5,i=-3i,u=7u,s="hi",b=true,c=F 1700000000000000000\n')
    assert line == Line(
        "m", {"t": "a"}, {"f": 1.5, "i": -3, "u": 7, "s": "hi", "b": True, "c": False}, 1700000000000000000
    )


def test_escapes_in_every_position() -> None:
    [line] = parse_lines(r'my\ meas\,x,ta\ g\=k=v\,a\ l\=x fi\=e\ ld="q\"uo\\te" 1')
    assert line.measurement == "my meas,x"
    assert line.tags == {"ta g=k": "v,a l=x"}
    assert line.fields == {"fi=e ld": 'q"uo\\te'}
    # A backslash before an ordinary character is literal.
    [line] = parse_lines(r"m\a,t=x\y f=1")
    assert line.measurement == "m\\a" and line.tags == {"t": "x\\y"}


def test_string_field_may_hold_spaces_commas_and_equals() -> None:
    [line] = parse_lines('m s="a b,c=d",n=2i')
    assert line.fields == {"s": "a b,c=d", "n": 2}
    assert line.timestamp is None


def test_comments_blank_lines_and_crlf() -> None:
    lines = parse_lines("# a comment\n\nm f=1 5\r\n  \nm f=2 6\n")
    assert [(line.fields["f"], line.timestamp) for line in lines] == [(1.0, 5), (2.0, 6)]


@pytest.mark.parametrize(
    "text, where",
    [
        ("m", "expected a space"),
        ("m ", "empty field key"),
        ("m f", "expected '=' after field key"),
        ("m f=", "empty field value"),
        ("m f=abc", "bad field value"),
        ("m f=1x", "bad field value"),
        ("m f=NaN", "not a finite number"),
        ("m f=inf", "not a finite number"),
        ("m f=1e999", "not a finite number"),
        ("m f=-1u", "bad unsigned"),
        ("m f=1.5i", "bad integer"),
        ('m f="open', "unterminated string"),
        ("m,t f=1", "expected '=' after tag key"),
        ("m,t= f=1", "empty tag value"),
        (",t=a f=1", "empty measurement"),
        ("m f=1 12x", "timestamp must be an integer"),
        ("m f=1 1_000", "timestamp must be an integer"),
        ("m f=1 1 2", "timestamp must be an integer"),
    ],
)
def test_bad_lines_name_line_column_and_reason(text: str, where: str) -> None:
    with pytest.raises(DecodeError) as err:
        parse_lines("m f=1\n" + text)
    assert err.value.reason == "bad_line_protocol"
    assert err.value.detail.startswith("line 2, column ")
    assert where in err.value.detail


def test_timestamp_units_are_told_apart_by_size() -> None:
    assert to_micros(1_700_000_000_123_456_789) == 1_700_000_000_123_456
    assert to_micros(1_700_000_000_123_456) == 1_700_000_000_123_456
    assert to_micros(1_700_000_000_123) == 1_700_000_000_123_000
    assert to_micros(1_700_000_000) == 1_700_000_000_000_000


TELEGRAF_ROUND = (
    "cpu,cpu=cpu0,host=gw-7 usage_idle=10,usage_user=80 1700000000000000000\n"
    "cpu,cpu=cpu-total,host=gw-7 usage_idle=35.5,usage_user=50 1700000000000000000\n"
    "mem,host=gw-7 used_percent=71.25,available=123i 1700000000000000000\n"
    'ping,host=gw-7,url=a.example average_response_ms=12.5,percent_packet_loss=0,result_code=0i 1700000000000000000\n'
    'ping,host=gw-7,url=b.example average_response_ms=40,percent_packet_loss=20 1700000000000000000\n'
    "disk,host=gw-7,path=/ used_percent=99 1700000000000000000\n"
)


def test_telegraf_round_becomes_one_sample() -> None:
    [sample] = samples_from_lines(parse_lines(TELEGRAF_ROUND), received_at=0.0, device_id="gw-7")
    assert sample.device_id == "gw-7"
    assert sample.ts == 1_700_000_000.0
    assert sample.seq == 1_700_000_000_000_000 * 4 + 2
    assert sample.metrics == {
        "cpu_percent": 64.5, "mem_percent": 71.25, "latency_ms": 40.0, "packet_loss_percent": 20.0,
    }


def test_telegraf_split_round_in_cpu_mem_ping_order_has_increasing_seq() -> None:
    seqs = [
        samples_from_lines(parse_lines(line), 0.0, "gw-7")[0].seq
        for line in TELEGRAF_ROUND.splitlines()[1:4]
    ]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_telegraf_lines_without_timestamp_use_receive_time_and_rounds_split() -> None:
    samples = samples_from_lines(parse_lines("mem,host=a used_percent=5 2\nmem used_percent=6"), 12.5, "a")
    assert [(s.device_id, s.ts, s.metrics["mem_percent"]) for s in samples] == [("a", 2.0, 5.0), ("a", 12.5, 6.0)]


def test_a_line_naming_another_host_is_refused_and_moves_nobody_s_seq() -> None:
    with pytest.raises(DecodeError) as err:
        samples_from_lines(parse_lines("mem,host=gw-0001 used_percent=99 9000000000000000000"), 0.0, "gw-0042")
    assert err.value.reason == "topic_mismatch" and "'gw-0001'" in err.value.detail and "'gw-0042'" in err.value.detail


def test_telegraf_ping_without_replies_reports_loss_only() -> None:
    [sample] = samples_from_lines(parse_lines("ping,host=r1,url=x percent_packet_loss=100,result_code=0i 10"), 0, "r1")
    assert sample.metrics == {"packet_loss_percent": 100.0}


def test_telegraf_unknown_measurements_and_per_core_lines_give_nothing() -> None:
    assert samples_from_lines(parse_lines("cpu,cpu=cpu0,host=a usage_idle=5 1\nswap,host=a used=1i 1"), 0, "a") == []


@pytest.mark.parametrize(
    "text, reason",
    [
        ("mem,host=b used_percent=5 1", "topic_mismatch"),
        ("mem,host=bad/host used_percent=5 1", "topic_mismatch"),
        ("mem,host=a used_percent=5 253402300800000000000", "bad_ts"),
        ("mem,host=a used_percent=5 99999999999999999999999", "bad_ts"),
        ("mem,host=a used_percent=150 1", "impossible_value"),
        ("ping,host=a average_response_ms=-3 1", "impossible_value"),
        ("mem,host=a used_percent=5 -1000000000000000000", "bad_ts"),
    ],
)
def test_telegraf_bad_values_are_rejected_with_reason(text: str, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        samples_from_lines(parse_lines(text), 0.0, "a")
    assert err.value.reason == reason
