"""Received HTML made safe to show in the console and the API.

nh3 (the Ammonia sanitizer) keeps formatting and drops scripts, event
handlers, forms, styles and frames. Remote images are tracking beacons as
often as not: they are removed unless the reader asks for them, and images
of the mail itself (``cid:``) are pointed at their attachment download.
"""

from __future__ import annotations

from collections.abc import Mapping

import nh3

#: Schemes a link may use; anything else (javascript:, data: in links...) is dropped.
LINK_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
EXTRA_ATTRIBUTES = {
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "a": {"href", "title"},
}


def safe_html(
    html: str, *, remote_images: bool = False, cid_urls: Mapping[str, str] | None = None
) -> str:
    """``html`` with nothing that runs, and no remote image unless ``remote_images``.

    ``cid_urls`` maps a Content-ID (without angle brackets) to the URL that
    serves that part, so embedded pictures still show.
    """
    cids = {key.strip("<>"): url for key, url in (cid_urls or {}).items()}

    def attribute(tag: str, name: str, value: str) -> str | None:
        lowered = value.strip().lower()
        if lowered.startswith("data:") and not (tag == "img" and lowered.startswith("data:image/")):
            return None
        if tag != "img" or name != "src":
            return value
        if lowered.startswith("cid:"):
            return cids.get(value.strip()[4:].strip("<>"))
        if lowered.startswith("data:image/"):
            return value
        return value if remote_images else None

    return nh3.clean(
        html,
        attributes={tag: set(names) for tag, names in EXTRA_ATTRIBUTES.items()},
        attribute_filter=attribute,
        url_schemes=LINK_SCHEMES,
        clean_content_tags={"script", "style"},
    )
