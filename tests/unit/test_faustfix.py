"""app.service.faustfix refuses to patch a faust-streaming (or aiokafka) it was not written against."""

import importlib.metadata

import pytest

from app.service import faustfix


def test_the_installed_versions_are_the_patched_ones():
    assert faustfix.installed_versions() == faustfix.PATCHED_FOR
    faustfix.check_versions()  # no exception


@pytest.mark.parametrize("found", [{"faust-streaming": "0.16.0", "aiokafka": "0.14.0"},
                                   {"faust-streaming": "0.15.2", "aiokafka": "0.14.0"}])
def test_another_faust_is_refused_in_one_line_that_says_what_to_do(found):
    with pytest.raises(faustfix.UnsupportedVersion) as e:
        faustfix.check_versions(found)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"faust-streaming {found['faust-streaming']} is installed, but ")
    assert "faust-streaming 0.15.3" in msg and "faust-streaming==0.15.3" in msg
    assert "LABELSTREAM_FAUSTFIX=0" in msg
    assert "aiokafka 0.14.0 is" not in msg  # only what is wrong is named as wrong


def test_both_wrong_are_both_named():
    with pytest.raises(faustfix.UnsupportedVersion, match=r"^faust-streaming 1\.0 and aiokafka 0\.13\.0 are installed"):
        faustfix.check_versions({"faust-streaming": "1.0", "aiokafka": "0.13.0"})


def test_apply_refuses_before_patching_anything(monkeypatch):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "0.16.0" if name == "faust-streaming" else real(name))
    monkeypatch.setattr(faustfix, "_applied", False)
    from faust.transport.consumer import Consumer

    init = Consumer.__init__
    with pytest.raises(faustfix.UnsupportedVersion, match="faust-streaming 0.16.0 is installed"):
        faustfix.apply()
    assert Consumer.__init__ is init and faustfix._applied is False


def test_the_escape_hatch_skips_the_check(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    monkeypatch.setenv("LABELSTREAM_FAUSTFIX", "0")
    faustfix.apply()  # no exception, nothing patched


def test_holes_are_the_offsets_of_the_range_that_no_record_has():
    assert faustfix.holes(0, 42, [0, 4, 8, 41]) == [(1, 3), (5, 7), (9, 40)]
    assert faustfix.holes(7, 8, [7]) == []
    assert faustfix.holes(3, 3, []) == []
