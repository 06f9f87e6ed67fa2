"""Cutting a reply into Markdown segments never changes the text or splits a block."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from foundry_tui.ui.markdown_split import last_cut, safe_cuts, split_segments

REPLY = """# Title

Intro paragraph.

```python
def f():

    return 1
```

- item one

  continued item one

Last paragraph.
"""


def test_cuts_fall_only_between_top_level_blocks() -> None:
    cuts = safe_cuts(REPLY)
    starts = [REPLY[cut:].splitlines()[0] for cut in cuts]
    assert starts == ["Intro paragraph.", "```python", "- item one", "Last paragraph."]


def test_no_cut_inside_a_fence_or_before_an_indented_line() -> None:
    for cut in safe_cuts(REPLY):
        before = REPLY[:cut]
        assert before.count("```") % 2 == 0
        assert not REPLY[cut].isspace()


def test_segments_join_back_exactly() -> None:
    segments = split_segments(REPLY * 50, limit=200)
    assert len(segments) > 10
    assert "".join(segments) == REPLY * 50


def test_last_cut_waits_for_the_segment_to_be_long_enough() -> None:
    assert last_cut(REPLY, not_before=0, min_length=10_000) is None
    assert last_cut(REPLY, not_before=0, min_length=10) == safe_cuts(REPLY)[-1]
    assert last_cut(REPLY, not_before=len(REPLY), min_length=10) is None


@given(
    st.text(alphabet=st.sampled_from(["a", " ", "\n", "`", "~", "-", "#", "1", "."]), max_size=400)
)
def test_any_text_splits_losslessly(text: str) -> None:
    assert "".join(split_segments(text, limit=20)) == text
    for cut in safe_cuts(text):
        assert 0 < cut < len(text)
