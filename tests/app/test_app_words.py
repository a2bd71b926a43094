"""What the app's pages say in words comes from the library's tables, one entry for
every code the firmware can send: each fault has what happened and what to do, each
state and podlet refusal its words."""
from __future__ import annotations

from podproto.names import FAULT_NAMES, PODLET_REASONS, STATE_NAMES
from steamer.live import words
from steamer.session import FAULT_ADVICE, PODLET_REFUSALS, STATE_WORDS


def test_every_fault_has_what_happened_and_what_to_do():
    assert set(FAULT_ADVICE) == {n for n in FAULT_NAMES if n}
    for what, todo in FAULT_ADVICE.values():
        assert what and todo and not todo.endswith(".")


def test_every_state_and_refusal_has_words():
    assert set(STATE_WORDS) == set(STATE_NAMES)
    assert set(PODLET_REFUSALS) == {r for r in PODLET_REASONS if r}


def test_a_view_in_words():
    view = {"state": "fault", "fault": "tip_over", "podlet_state": "refused",
            "podlet_refused": "expired", "podlet_type": 3}
    assert words(view) == {"state_text": "fault", "fault_text": "the steamer tipped over",
                           "fault_todo": "stand it upright, let it cool, press the button",
                           "podlet_text": "podlet refused: it is past its expiry date"}
    ok = dict(view, state="steaming", fault=None, podlet_state="accepted",
              profile="vitamin-c v1", podlet_left_ul=2500)
    assert words(ok) == {"state_text": "steaming",
                         "podlet_text": "podlet vitamin-c v1, 2500 µl left"}
    # The expiry from the podlet's podlet_accepted record.
    assert words(dict(ok, podlet_expiry="2027-05-01"))["podlet_text"] == (
        "podlet vitamin-c v1, 2500 µl left, expires 2027-05-01")
