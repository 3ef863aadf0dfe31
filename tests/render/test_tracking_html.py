"""track_html on arbitrary HTML: every web link tracked, nothing else changed.

Undoing the rewrite (each redirect back to the URL its token signs, the
"view online" paragraph and the pixel removed) must give back the body as
it was, whatever the tags, case, quotes and text around the links.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from courrier.render.links import LinkSigner
from courrier.render.tracking import track_html

SIGNER = LinkSigner("a secret of the test installation", "http://courrier.test")
REDIRECT = re.compile(r"http://courrier\.test/t/c/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")
URLS = st.sampled_from(
    [
        "https://club.example.org/bookings/B-1",
        "http://example.org/a?b=c",
        "HTTPS://EXAMPLE.ORG/",
        "http://courrier.test/preferences/abc",  # Courrier's own: left alone
    ]
)
PIECES = st.one_of(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<br>",
            "<b>bold</b>",
            "<BODY style='x'>",
            "</Body >",
            "<a name=x>",
            "a < b",
        ]
    ),
    st.text(alphabet="abc é\n\t>", max_size=8),
    st.builds(
        lambda u, q, a: f"<{a} class=x href={q}{u}{q}>link</a>",
        URLS,
        st.sampled_from("\"'"),
        st.sampled_from(["a", "A"]),
    ),
    st.builds(lambda u: f'<a href="{u}">', URLS),
)


def undo(tracked: str, message_id: int) -> str:
    def back(found: re.Match[str]) -> str:
        payload = SIGNER.verify("click", found.group(1))
        assert payload is not None and payload[0] == message_id
        return str(payload[1])

    plain = REDIRECT.sub(back, tracked)
    plain = re.sub(
        r'<p style="[^"]*"><a href="http://courrier\.test/t/v/[^"]+"[^>]*>[^<]*</a></p>',
        "",
        plain,
        count=1,
    )
    return re.sub(r'<img src="http://courrier\.test/t/o/[^"]+"[^>]*>', "", plain, count=1)


@given(st.lists(PIECES, max_size=12), st.integers(min_value=1, max_value=10**12))
def test_undoing_the_tracking_gives_back_the_body(pieces: list[str], message_id: int) -> None:
    body = "".join(pieces)
    tracked = track_html(body, message_id, SIGNER, "fr")
    assert undo(tracked, message_id) == body
    assert tracked.count("/t/o/") == 1 and tracked.count("/t/v/") == 1
    outside = [u for u in re.findall(r"href=[\"'](https?://[^\"']+)", tracked, re.I)]
    assert all(u.startswith("http://courrier.test/") for u in outside)
