"""track_html on arbitrary HTML: every web link tracked, nothing else changed.

Undoing the rewrite (each redirect back to the URL its token signs, the
"view online" paragraph and the pixel removed) must give back the body as
it was, whatever the tags, case, quotes and text around the links.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.render.links import LinkSigner
from courrier.render.tracking import track_html, track_text

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
    st.builds(lambda u, end: f"<a href={u}{end}", URLS, st.sampled_from([">", " class=x>", "\t>"])),
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
    outside = [u for u in re.findall(r"href=[\"']?(https?://[^\"'\s>]+)", tracked, re.I)]
    assert all(u.startswith("http://courrier.test/") for u in outside)


@pytest.mark.parametrize(
    ("tag", "written", "url"),
    [
        ("<a href={}>", "https://club.example.org/b/1", "https://club.example.org/b/1"),
        ("<A HREF={} class=y>", "http://x.org/?a=1&amp;b=2", "http://x.org/?a=1&b=2"),
        ("<a\nhref = {}>", "https://x.org/p/", "https://x.org/p/"),
        ("<a title=t href={}>", "https://x.org/`q'", "https://x.org/`q'"),
    ],
)
def test_an_unquoted_href_is_tracked_and_stays_unquoted(tag: str, written: str, url: str) -> None:
    tracked = track_html(f"<body>{tag.format(written)}go</a></body>", 42, SIGNER)
    [token] = REDIRECT.findall(tracked)
    assert SIGNER.verify("click", token) == [42, url]
    assert tag.format(SIGNER.click(42, url)) + "go</a>" in tracked


@pytest.mark.parametrize(
    "tag",
    [
        "<a href=mailto:someone@example.org>",
        "<a href=/relative/path>",
        "<a href=http://courrier.test/preferences/abc>",  # Courrier's own
        "<a name=href=https://x.org>",
    ],
)
def test_an_unquoted_href_that_is_not_a_web_link_is_left_alone(tag: str) -> None:
    body = f"<body>{tag}x</a></body>"
    assert "/t/c/" not in track_html(body, 42, SIGNER)


def test_the_text_part_ends_with_the_view_online_link_in_the_recipients_language() -> None:
    original = SIGNER.original(7)
    assert track_text("Bonjour,\nà bientôt\n", original, "fr-CA") == (
        f"Bonjour,\nà bientôt\n\nVoir ce message en ligne: {original}\n"
    )
    assert track_text("Hi", original, "xx") == f"Hi\n\nView this message online: {original}\n"
    assert track_text("", original) == f"\nView this message online: {original}\n"
