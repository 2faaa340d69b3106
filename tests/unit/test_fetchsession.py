"""The client side of a fetch session (app/service/fetchsession.py), without a broker: what each request
names, and how an answer or a failure moves the session on."""

from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4, FetchRequest_v11

from app.service.fetchsession import FETCH_SESSION_ID_NOT_FOUND, FetchSession, SessionFetchRequest, next_epoch

A = [("a", [(0, 10, 100), (1, 20, 100)]), ("b", [(0, 0, 100)])]


def opened(wanted=A, session_id=9) -> FetchSession:
    s = FetchSession()
    assert s.answered(s.plan(wanted), 0, session_id)
    return s


def test_the_first_fetch_is_full_and_opens_a_session():
    s = FetchSession()
    p = s.plan(A)
    assert (p.session_id, p.epoch, p.send, p.forget) == (0, 0, A, [])
    assert s.answered(p, 0, 9)
    assert (s.session_id, s.epoch) == (9, 1)
    assert s.held == {("a", 0): (10, 100), ("a", 1): (20, 100), ("b", 0): (0, 100)}


def test_unchanged_partitions_are_implied_changed_new_and_gone_ones_named():
    s = opened()
    assert s.plan(A).send == [] and s.plan(A).forget == []
    p = s.plan([("a", [(0, 11, 100), (1, 20, 100)]), ("c", [(3, 5, 100)])])
    assert p.send == [("a", [(0, 11, 100)]), ("c", [(3, 5, 100)])]
    assert p.forget == [("b", [0])]
    assert (p.session_id, p.epoch) == (9, 1)
    assert s.answered(p, 0, 9) and s.epoch == 2
    assert set(s.held) == {("a", 0), ("a", 1), ("c", 3)}


def test_a_changed_max_bytes_is_a_change():
    assert opened().plan([("a", [(0, 10, 200), (1, 20, 100)]), ("b", [(0, 0, 100)])]).send == [("a", [(0, 10, 200)])]


def test_an_unanswered_request_makes_the_next_fetch_full_and_closes_the_old_session():
    s = opened()
    s.plan([("a", [(0, 11, 100)])])
    s.failed()
    p = s.plan(A)
    assert (p.session_id, p.epoch, p.send) == (9, 0, A)  # session 9 named: the broker closes it
    assert s.answered(p, 0, 12) and s.session_id == 12


def test_an_evicted_session_is_not_named_again():
    s = opened()
    assert not s.answered(s.plan(A), FETCH_SESSION_ID_NOT_FOUND, 0)
    p = s.plan(A)
    assert (p.session_id, p.epoch) == (0, 0)


def test_a_broker_that_keeps_no_session_gets_full_fetches():
    s = opened(session_id=0)
    p = s.plan(A)
    assert p.full and p.send == A


def test_an_answer_from_another_session_drops_this_one():
    s = opened()
    assert not s.answered(s.plan(A), 0, 10)
    assert s.plan(A).full


def test_epochs_wrap_to_one():
    assert next_epoch(1) == 2 and next_epoch(2**31 - 1) == 1


def test_the_wire_request_carries_the_session_from_v7_and_everything_below():
    s = opened()
    wanted = FetchRequest(10, 1, 1 << 20, 0, [("a", [(0, 11, 100), (1, 20, 100)])])
    wire = SessionFetchRequest(wanted, s.plan(wanted.topics))
    v11 = wire.build(FetchRequest_v11)
    assert (v11.session_id, v11.session_epoch) == (9, 1)
    assert v11.topics == [("a", [(0, -1, 11, -1, 100)])]
    assert v11.forgotten_topics_data == [("b", [0])]
    v4 = wire.build(FetchRequest_v4)  # no sessions before v7: the whole request
    assert v4.topics == wanted.topics and wire.version == 4
