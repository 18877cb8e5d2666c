"""GX Data Docs pages that open offline and contact no third party.

GX writes its pages with ``<script src>`` and ``<link href>`` pointing at public CDNs (jQuery,
Bootstrap, bootstrap-table, Vega, Font Awesome) and its logo on S3. A quality team on a
clinical network opens them without internet, and a page that loads them online tells those
hosts who opened a validation report and when. ``localize`` rewrites every such tag to the
local copy the site carries (``config/data_docs_assets.yaml`` → ``assets/data_docs/``, copied
to ``static/vendor/``), points GX's own ``static/`` files at the site root from any depth (GX
counts one folder too few on validation pages), and drops any other remote script or
stylesheet tag (a GX version that adds one loses that asset, never the page's content), and
any remote ``url(…)`` in inline CSS (GX's dark-mode logo on S3). Links a reader clicks (``<a>``) stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from transforms.catalog import CONFIG_DIR
from transforms.yamlfile import read_yaml

ASSETS_YAML = CONFIG_DIR / "data_docs_assets.yaml"
ASSETS_DIR = CONFIG_DIR.parent / "assets" / "data_docs"
VENDOR_DIR = "static/vendor"  # under the site root

_TAG = re.compile(r"<(?P<name>script|link)\b[^>]*>", re.IGNORECASE)
_URL_ATTR = re.compile(r"""\s(?:src|href)\s*=\s*(?P<q>["'])(?P<url>[^"']*)(?P=q)""", re.IGNORECASE)
# subresource integrity would have to be recomputed for nothing (the copies are byte-identical
# to the CDN's), and a file:// page cannot fetch a script in CORS mode
_CORS = re.compile(r"""\s(?:integrity|crossorigin)(?:\s*=\s*(["'])[^"']*\1)?""", re.IGNORECASE)
_REMOTE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)
# GX's own assets, which it links with one '../' too few from pages nested deeper than it
# expects (validations/<schema>/<table>/<run>/<time>/…)
_SITE_STATIC = re.compile(
    r"""(?P<lead>\s(?:src|href)\s*=\s*["'])(?:\.\./)*static/""", re.IGNORECASE
)
_ANY_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_CLOSING_SCRIPT = re.compile(r"\s*</script\s*>", re.IGNORECASE)
# GX's logo on S3 (…/logo-long.png?d=<build time>) → the copy in the site's static/images
_S3_IMAGE = re.compile(
    r"""(?P<lead><img\b[^>]*\ssrc\s*=\s*["'])https://great-expectations-web-assets\.s3[^"'/]*"""
    r"""/(?P<file>[\w.-]+)(?:\?[^"']*)?""",
    re.IGNORECASE,
)

# a remote image in CSS (GX's dark-mode style puts its logo on S3 as a background): no copy
# is shipped, so url(…) becomes `none` in <style> blocks and style="…" attributes
_STYLE_BLOCK = re.compile(r"(?P<open><style\b[^>]*>)(?P<css>.*?)(?=</style\s*>)", re.I | re.S)
_STYLE_ATTR = re.compile(r"""(?P<lead>\sstyle\s*=\s*)(?P<q>["'])(?P<css>.*?)(?P=q)""", re.I | re.S)
_OPEN_TAG = re.compile(r"<[A-Za-z][^>]*>")
_CSS_REMOTE_URL = re.compile(r"""url\(\s*(["']?)(?:https?:)?//[^"')]*\1\s*\)""", re.I)


def _drop_remote_css_urls(html: str) -> str:
    def css(text: str) -> str:
        return _CSS_REMOTE_URL.sub("none", text)

    html = _STYLE_BLOCK.sub(lambda m: m.group("open") + css(m.group("css")), html)
    return _OPEN_TAG.sub(
        lambda t: _STYLE_ATTR.sub(
            lambda m: m.group("lead") + m.group("q") + css(m.group("css")) + m.group("q"),
            t.group(0),
        ),
        html,
    )


def load_assets(path: Path = ASSETS_YAML) -> dict[str, str]:
    """CDN URL → path of its local copy under the site's static/vendor/."""
    assets = read_yaml(path)["assets"]
    return {a["url"]: VENDOR_DIR + "/" + a["local"] for a in assets}


def localize(html: str, assets: Mapping[str, str], to_root: str) -> tuple[str, list[str]]:
    """Point a page's CDN scripts and stylesheets at local copies.

    ``to_root`` is the relative path from the page's folder to the site root ('' or '../…/').
    Returns the page and the remote URLs whose tags were dropped (not in ``assets``).
    """
    dropped: list[str] = []
    out: list[str] = []
    pos = 0
    for tag in _TAG.finditer(html):
        url_match = _URL_ATTR.search(tag.group(0))
        if url_match is None or not _REMOTE.match(url_match.group("url")):
            continue
        url = url_match.group("url")
        out.append(html[pos : tag.start()])
        pos = tag.end()
        local = assets.get(url)
        if local is not None:
            text = tag.group(0)
            start, end = url_match.span("url")
            text = text[:start] + to_root + local + text[end:]
            out.append(_CORS.sub("", text))
            continue
        dropped.append(url)
        if tag.group("name").lower() == "script":
            closing = _CLOSING_SCRIPT.match(html, pos)
            if closing:
                pos = closing.end()
    out.append(html[pos:])
    page = _S3_IMAGE.sub(
        lambda m: m.group("lead") + to_root + "static/images/" + m.group("file"), "".join(out)
    )
    page = _ANY_TAG.sub(
        lambda t: _SITE_STATIC.sub(lambda m: m.group("lead") + to_root + "static/", t.group(0)),
        page,
    )
    return _drop_remote_css_urls(page), dropped


def relative_root(page: Path, site: Path) -> str:
    """'../' once per folder between ``site`` and the folder of ``page``."""
    return "../" * (len(page.relative_to(site).parts) - 1)
